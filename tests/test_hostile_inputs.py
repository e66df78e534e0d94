"""Hostile inputs and faults: `colorize`, `evaluate` and `prep-dataset` over the corpus of tests/hostile_corpus.py,
then the faults an unattended batch meets (SIGINT, SIGTERM, repeated SIGKILL, a full or read-only disk, a kill
while training writes its checkpoint).

Every run checks the same promises: no crash, each bad file named once with its cause on one line, the exit
code, every input byte unchanged, every output under its final name complete, no temp file left behind.
"""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from colorize_cli.cli import cli
from colorize_cli.models.checkpoint import load_checkpoint, read_header
from colorize_cli.photos.io import read_image
from colorize_cli.progress import one_line
from colorize_cli.train.loop import train
from colorize_cli.train.run_folder import RunFolder
from tests.hostile_corpus import (
    build_corpus,
    denied,
    drop_permission_kinds,
    permission_prefix,
    photo,
    tree_hashes,
)
from tests.test_train import quiet, tiny_config, write_photos

REPO = Path(__file__).resolve().parent.parent
DONE = "done"
NOT_AN_IMAGE = "not an image file"
# What `colorize` does with each file of a kind, in the corpus's order: DONE, or the cause its error line gives.
COLORIZE = {
    "jpeg_truncated": "image file is truncated",
    "jpeg_corrupt": "broken data stream",
    "png_truncated": "image file is truncated",
    "png_bad_crc": "broken data stream",
    "tiff_truncated": "failed to read",
    "tiff_corrupt": "while decompressing data",
    "zero_byte": NOT_AN_IMAGE,
    "wrong_extension": DONE,
    "text_named_jpg": NOT_AN_IMAGE,
    "one_by_one": DONE,
    "one_by_n": DONE,
    "extreme_aspect": DONE,
    "decompression_bomb": "more than 300,000,000 pixels",
    "bomb_header": "more than 300,000,000 pixels",
    "png_text_bomb": "Decompressed data too large",
    "png_zero_width": NOT_AN_IMAGE,
    "gray_16bit": DONE,
    "rgb_16bit_png": DONE,
    "float32_tiff": DONE,
    "one_bit": DONE,
    "cmyk": DONE,
    "palette": DONE,
    "alpha": DONE,
    "multipage_tiff": DONE,  # the first page
    "animated": DONE,  # the first frame
    "exif_orientations": DONE,
    "exif_broken": DONE,  # the EXIF is dropped or ignored, the photo is not
    "icc_profiles": DONE,
    "names_unicode_spaces": DONE,
    "name_with_newline": [DONE, NOT_AN_IMAGE],
    "name_too_long": DONE,
    "folder_named_like_an_image": DONE,
    "name_not_utf8": [DONE, NOT_AN_IMAGE],
    "symlink_to_file": DONE,  # links to files are followed, links to folders are not
    "symlink_dangling": "No such file or directory",
    "symlink_loop_files": "Too many levels of symbolic links",
    "symlink_loop_folder": None,  # never listed
    "fifo": "not a regular file",
    "device": "not a regular file",
    "unreadable_file": "Permission denied",
    "unreadable_folder": "cannot list this folder (Permission denied)",
}
# prep-dataset's skip reason for each failing kind (it counts skips by reason); links are never followed there.
PREP_REASONS = {
    "decompression_bomb": "too_large_image",
    "bomb_header": "too_large_image",
    "symlink_dangling": "link",
    "symlink_loop_files": "link",
    "symlink_loop_folder": "link",
    "device": "link",  # a link to /dev/zero
    "fifo": "special_file",
    "unreadable_folder": "unreadable_folder",
}
# Photos evaluate scores as colourless (no truth to compare colour with): listed as problems too.
EVALUATE_GRAY = {"gray16.png", "gray16.tif", "float32.tif", "bilevel.png", "la.png"}
GRAY_REASON = "a grayscale photo, no colour to compare against"


def expectations(kinds):
    """(kind, path, what colorize does with it) for every file of the corpus."""
    for kind, paths in kinds.items():
        expected = COLORIZE[kind]
        for path, outcome in zip(paths, expected if isinstance(expected, list) else [expected] * len(paths)):
            yield kind, path, outcome


@pytest.fixture(scope="module")
def permission():
    """Command prefix that makes mode 000 deny reads (empty for a non-root user), or None where nothing can."""
    return permission_prefix()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, permission):
    root = tmp_path_factory.mktemp("hostile") / "corpus"
    kinds = build_corpus(root)
    if permission is None:
        drop_permission_kinds(kinds)
    assert set(kinds) == set(COLORIZE) and len(kinds) >= 25
    return root, kinds


def run_over_corpus(corpus, permission, *args):
    """Run `colorize ARGS` in a subprocess with the permission kinds denied; every input must come back unchanged."""
    root, kinds = corpus
    before = tree_hashes(root)
    with denied(kinds):
        result = subprocess.run([*(permission or []), sys.executable, "-m", "colorize_cli", *map(str, args)],
                                capture_output=True, timeout=300, cwd=REPO)
    assert tree_hashes(root) == before
    stderr = result.stderr.decode()  # strict: a file name's odd bytes must come out escaped
    assert "Traceback" not in stderr, stderr
    return result, stderr


def test_permission_kinds_can_be_tested(permission):
    if permission is None:
        pytest.skip("root without setpriv: mode 000 cannot deny root a read, so the corpus leaves out the "
                    "unreadable file and folder")


def test_colorize_names_every_bad_file_once_and_colorizes_the_rest(corpus, permission, cnn_checkpoint, tmp_path):
    root, kinds = corpus
    out = tmp_path / "out"
    result, stderr = run_over_corpus(corpus, permission, root, "-o", out, "--model", cnn_checkpoint, "--json")

    assert result.returncode == 1
    records = {record["source"]: record for record in map(json.loads, result.stdout.splitlines())}
    lines = stderr.splitlines()
    assert all(line.startswith(("error: ", "warning: ")) for line in lines), stderr
    for kind, path, expected in expectations(kinds):
        if expected is None:
            assert not any(source.startswith(str(path)) for source in records)
            continue
        record = records.pop(str(path))
        output = Path(record["output"])
        if expected == DONE:
            assert record["status"] == "done", (kind, record)
            colour, original = read_image(output), read_image(path)  # decoding all of it: the file is complete
            assert colour.pixels.shape == original.pixels.shape[:2] + (3,), kind
            assert colour.bit_depth == (16 if output.suffix in (".tif", ".png") and original.bit_depth == 16 else 8), kind
        else:
            assert record["status"] == "failed" and expected in record["error"], (kind, record)
            assert not output.exists()
            # Named once, on one line, whatever the file name holds.
            assert [line for line in lines if line.startswith(f"error: {one_line(str(path))}: ")] == [
                f"error: {one_line(str(path))}: {record['error']}"]
    assert records == {}
    for path in [*kinds["multipage_tiff"], *kinds["animated"]]:
        assert f"warning: {path}: more than one page or frame; only the first is read" in lines
    # Pillow's own warning does not name the file: the line does, once.
    [bad_offset] = [path for path in kinds["exif_broken"] if path.name == "exif_bad_offset.jpg"]
    assert [line for line in lines if "Corrupt EXIF data" in line] == [
        f"warning: {bad_offset}: Corrupt EXIF data. Expecting to read 2 bytes but only got 0."]
    assert len([line for line in lines if line.startswith("error: ")]) == result.stdout.count(b'"failed"')
    assert not list(out.rglob(".*.tmp-*"))


def test_evaluate_lists_every_unusable_photo_with_its_cause(corpus, permission, cnn_checkpoint):
    root, kinds = corpus
    result, _ = run_over_corpus(corpus, permission, "evaluate", root, "--model", cnn_checkpoint, "--crop", "64",
                                "--examples", "1", "--json")

    assert result.returncode == 1  # problems are listed, never fatal; the exit code says some photos failed
    report = json.loads(result.stdout)
    problems = {problem["path"]: problem["reason"] for problem in report["problems"]}
    evaluated = {image["path"] for image in report["images"]}
    for kind, path, expected in expectations(kinds):
        relative = path.relative_to(root).as_posix()
        if expected is None:
            assert not any(name.startswith(relative) for name in [*problems, *evaluated])
        elif expected != DONE:
            assert expected in problems.pop(relative), kind
        elif path.name in EVALUATE_GRAY:
            assert problems.pop(relative) == GRAY_REASON
        else:
            evaluated.remove(relative)
    assert problems == {} and evaluated == set()


def test_prep_dataset_keeps_the_good_photos_and_counts_every_skip(corpus, permission, tmp_path):
    root, kinds = corpus
    out = tmp_path / "prep"
    result, stderr = run_over_corpus(corpus, permission, "prep-dataset", root, "-o", out, "--workers", "1", "--quiet",
                                     "--min-size", "1", "--max-aspect", "10000", "--min-chroma", "0",
                                     "--dedupe-distance", "-1")

    assert result.returncode == 1, stderr  # the set is written; the unreadable files make it a partial success
    kept, skipped = set(), Counter()
    for kind, path, expected in expectations(kinds):
        if kind in PREP_REASONS or (kind == "symlink_to_file" and path.is_symlink()):
            skipped[PREP_REASONS.get(kind, "link")] += 1
        elif expected == DONE:
            kept.add(f"{root.name}/{path.relative_to(root).as_posix()}")
        else:
            skipped["unreadable"] += 1
    stats = json.loads((out / "stats.json").read_text())
    assert stats["skipped"] == dict(skipped)
    named = [line for line in stderr.splitlines() if line.startswith("error: ")]
    failed = skipped["unreadable"] + skipped["unreadable_folder"]  # each named on one line with its cause
    assert len(named) == stats["failed"] == failed
    assert named == [one_line(f"error: {line}") for line in stats["failures"]]  # a newline in a name escaped
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {row["source"] for row in manifest} == kept
    assert not [path for path in out.rglob("*") if ".tmp-" in path.name]


def test_two_inputs_with_one_output_name_stop_the_run_before_any_work(tmp_path, cnn_checkpoint):
    photos = tmp_path / "photos"
    photos.mkdir()
    for suffix in (".gif", ".webp"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(photos / f"same{suffix}")
    result = CliRunner().invoke(cli, [str(photos), "-o", str(tmp_path / "out"), "--model", str(cnn_checkpoint)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "would both be written to" in result.output
    assert not (tmp_path / "out").exists()


# --- faults ----------------------------------------------------------------------------------------------


def gray_photos(folder, count, size=(240, 320), grain=8):
    """`count` distinct gray PNGs of `size` (H, W) in `folder`, smooth over `grain` pixels (1: noise, which no
    encoder can shrink)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(count)
    base = rng.integers(0, 256, (size[0] // grain, size[1] // grain), dtype=np.uint8)
    for i in range(count):
        Image.fromarray(np.roll(base, i, axis=1)).resize(size[::-1], Image.Resampling.BILINEAR).save(
            folder / f"{i:02}.png")
    return folder


def final_outputs(out):
    """Files under their final names: every one must be complete (read_image decodes all of it)."""
    outputs = sorted(path for path in out.rglob("*.png") if not path.name.startswith("."))
    for path in outputs:
        assert read_image(path).pixels.ndim == 3
    return outputs


def wait_for_outputs(out, count, process, timeout=120):
    deadline = time.monotonic() + timeout
    while len(list(out.rglob("[!.]*.png"))) < count and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def colorize_command(photos, out, checkpoint, *args):
    return [sys.executable, "-m", "colorize_cli", str(photos), "-o", str(out), "--model", str(checkpoint), *args]


def statuses(stdout):
    return Counter(json.loads(line)["status"] for line in stdout.splitlines())


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_finish_the_images_in_flight_and_exit_128_plus_n(sig, tmp_path, cnn_checkpoint):
    photos, out = gray_photos(tmp_path / "photos", 40), tmp_path / "out"
    command = colorize_command(photos, out, cnn_checkpoint, "--json")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    wait_for_outputs(out, 3, process)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 128 + sig, stderr
    assert f"stopped by {sig.name}" in stderr.decode() and b"Traceback" not in stderr
    done = final_outputs(out)
    assert statuses(stdout) == Counter(done=len(done)) and 3 <= len(done) < 40
    assert not list(out.rglob(".*.tmp-*"))  # the images in flight were finished, not abandoned

    rerun = subprocess.run(command, capture_output=True, cwd=REPO)
    assert rerun.returncode == 0
    assert statuses(rerun.stdout) == Counter(skipped=len(done), done=40 - len(done))


@pytest.mark.slow
def test_sigkill_at_random_points_again_and_again_loses_nothing(tmp_path, cnn_checkpoint):
    rng = random.Random(2024)
    photos, out = gray_photos(tmp_path / "photos", 40), tmp_path / "out"
    command = colorize_command(photos, out, cnn_checkpoint, "-q")
    kept = {}
    for _ in range(3):
        process = subprocess.Popen(command, cwd=REPO)
        wait_for_outputs(out, len(kept) + 1, process)  # it is colorizing
        time.sleep(rng.uniform(0, 0.4))
        process.kill()
        process.wait()
        outputs = final_outputs(out)
        assert all(path.read_bytes() == data for path, data in kept.items())  # finished outputs are never redone
        kept = {path: path.read_bytes() for path in outputs}

    rerun = subprocess.run(command + ["--json"], capture_output=True, cwd=REPO)
    assert rerun.returncode == 0
    assert statuses(rerun.stdout) == Counter(skipped=len(kept), done=40 - len(kept))
    assert len(final_outputs(out)) == 40 and all(path.read_bytes() == data for path, data in kept.items())
    assert not list(out.rglob(".*.tmp-*"))  # a killed write's temp file is cleared when that output is written


def test_a_full_disk_stops_the_batch_and_a_rerun_finishes_it(tmp_path, cnn_checkpoint, monkeypatch):
    photos, out = gray_photos(tmp_path / "photos", 12, size=(48, 64)), tmp_path / "out"
    real_save, saved = Image.Image.save, []

    def save_until_the_disk_is_full(self, fp, *args, **kwargs):
        if len(saved) >= 3:
            Path(fp).write_bytes(b"\x89PNG\r\n\x1a\n half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(fp))
        saved.append(fp)
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_until_the_disk_is_full)
    args = [str(photos), "-o", str(out), "--model", str(cnn_checkpoint), "--json"]
    result = CliRunner().invoke(cli, args)

    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    failed = [record for record in records if record["status"] == "failed"]
    assert all("No space left on device" in record["error"] for record in failed)
    # It stops at once: only the images already in flight (workers + 1) meet the full disk too.
    assert 1 <= len(failed) <= 3 and len(records) < 12
    assert f"stopped with {12 - len(records)} image(s) not tried" in result.stderr
    assert len(final_outputs(out)) == 3 and not list(out.rglob(".*.tmp-*"))

    monkeypatch.undo()  # space is made
    rerun = CliRunner().invoke(cli, args)
    assert rerun.exit_code == 0 and statuses(rerun.stdout) == Counter(skipped=3, done=9)


@pytest.fixture
def small_disk(tmp_path):
    """A real 192 KiB tmpfs, where this machine lets the tests mount one (root); skipped elsewhere."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}); the fault-injected test stands in")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_real_full_or_read_only_disk_stops_the_batch(fault, small_disk, tmp_path, cnn_checkpoint):
    photos, out = gray_photos(tmp_path / "photos", 16, size=(128, 128), grain=1), small_disk / "out"
    if fault == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    command = colorize_command(photos, out, cnn_checkpoint, "--json", "--format", "png")
    result = subprocess.run(command, capture_output=True, cwd=REPO)

    assert result.returncode == 1
    cause = "No space left on device" if fault == "full" else "Read-only file system"
    failed = [r for r in map(json.loads, result.stdout.splitlines()) if r["status"] == "failed"]
    assert failed and all(cause in record["error"] for record in failed)
    assert b"image(s) not tried: the output disk is full or read-only" in result.stderr
    done = final_outputs(out) if out.exists() else []
    assert len(done) < 16 and not list(small_disk.rglob(".*.tmp-*"))

    subprocess.run(["mount", "-o", "remount,rw,size=16m", str(small_disk)], check=True)
    rerun = subprocess.run(command, capture_output=True, cwd=REPO)
    assert rerun.returncode == 0 and statuses(rerun.stdout) == Counter(skipped=len(done), done=16 - len(done))


def test_a_read_only_output_folder_fails_each_image_by_name(permission, tmp_path, cnn_checkpoint):
    if permission is None:
        pytest.skip("root without setpriv: mode 555 cannot stop root from writing")
    photos, out = gray_photos(tmp_path / "photos", 3, size=(48, 64)), tmp_path / "out"
    out.mkdir(mode=0o555)
    result = subprocess.run([*permission, *colorize_command(photos, out, cnn_checkpoint)], capture_output=True, cwd=REPO)
    out.chmod(0o755)

    assert result.returncode == 1
    errors = result.stderr.decode().splitlines()
    for i in range(3):
        assert sum(line.startswith(f"error: {photos / f'{i:02}.png'}: ") and "Permission denied" in line
                   for line in errors) == 1
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("fault", ["full disk", "not a folder"])
@pytest.mark.parametrize("command", ["prep-dataset", "evaluate"])
def test_prep_dataset_and_evaluate_name_an_output_they_cannot_write(command, fault, tmp_path, request):
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(3):
        Image.fromarray(photo(seed)).save(photos / f"{seed}.png")
    if fault == "full disk":
        disk = request.getfixturevalue("small_disk")
        with open(disk / "filler", "wb") as filler, pytest.raises(OSError):
            filler.write(bytes(1 << 20))
            filler.flush()
        out, cause = disk / "out", "No space left on device"
    else:
        (tmp_path / "a_file").write_text("")
        out, cause = tmp_path / "a_file" / "out", "Not a directory"
    args = [photos, "-o", out, "--min-size", "1", "--workers", "1"] if command == "prep-dataset" else [photos, "--out", out]
    result = CliRunner().invoke(cli, [command, *map(str, args)])

    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"Error: {out}: cannot write")
    assert cause in result.stderr and "Traceback" not in result.output


# --- training: a kill while the checkpoint is written ------------------------------------------------------

# Trains a tiny cnn, saving every 2 steps; the second save of `target` writes half its file, signals, and hangs.
TRAIN_AND_HANG = """
import os, sys, time
import torch
from colorize_cli.models import checkpoint
from colorize_cli.train import run_folder
from colorize_cli.train.loop import train
from tests.test_train import quiet, tiny_config

out, data, target, ready = sys.argv[1:]
module, name = (run_folder.torch, "save") if target == "state" else (checkpoint, "_write_bytes")
real, calls = getattr(module, name), []

def save_half_then_hang(obj, path, *args, **kwargs):
    calls.append(path)
    real(obj, path, *args, **kwargs)
    if len(calls) == 2:
        os.truncate(path, os.path.getsize(path) // 2)
        open(ready, "w").close()
        time.sleep(600)

setattr(module, name, save_half_then_hang)
train(tiny_config("cnn", data, steps=6, save_every=2), out, session=quiet(), log=lambda line: None)
"""


@pytest.fixture(scope="module")
def train_photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("train_photos"), train=8, val=0)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["state", "weights"])
def test_sigkill_while_saving_a_checkpoint_keeps_the_previous_one(target, train_photos, tmp_path):
    out, ready = tmp_path / "run", tmp_path / "ready"
    process = subprocess.Popen([sys.executable, "-c", TRAIN_AND_HANG, str(out), str(train_photos), target, str(ready)],
                               cwd=REPO, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode()
        time.sleep(0.05)
    process.kill()
    process.wait()

    assert [path for path in out.iterdir() if ".tmp-" in path.name]  # the half-written file is there...
    # ...beside the previous files, intact: the state of step 4 was saved before its weights were cut off.
    assert RunFolder(out).load_state("cpu")["step"] == (2 if target == "state" else 4)
    load_checkpoint(out / "last.safetensors")
    assert read_header(out / "last.safetensors")["training"]["trained_steps"] == 2

    result = train(tiny_config("cnn", train_photos, steps=6, save_every=2), out, session=quiet(), resume=True,
                   log=lambda line: None)
    assert result.step == 6 and torch.load(out / "last.pt", weights_only=True)["step"] == 6
    assert not [path for path in out.iterdir() if ".tmp-" in path.name]


# --- memory over a long batch ----------------------------------------------------------------------------


@pytest.mark.slow
def test_rss_stays_flat_over_a_batch_of_mixed_sizes():
    # oneDNN keeps a compiled kernel per input shape (up to 1024: the plateau bench/bench_memory.py shows on
    # 2,000 photos); kept small here, so that what grows is ours alone.
    code = ("import json, sys; sys.path.insert(0, 'bench'); from bench_memory import measure; "
            "print(json.dumps(measure(900, 100, max_side=96, log=lambda line: None)))")
    env = {**os.environ, "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "8"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, check=True)
    rss = dict(json.loads(result.stdout.splitlines()[-1]))
    # Each worker thread warms its own allocator arena and oneDNN scratch over the first ~500 images (+20 MiB
    # with 2 workers, none with 1; the convolutions with fused activations take the last 200 of those: +6.5
    # to +8 MiB from image 300 to 500); after that, measured +3.5-4 MiB from image 500 to 900. Keeping each
    # image's decoded pixels would add ~12 MiB per 200 images.
    assert rss[900] - rss[500] < 8, rss
