"""`colorize PATH...`: the batch job, read as a user would run it."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import ExifTags, Image

from colorize_cli.cli import cli
from colorize_cli.photos.io import read_image, read_luminance
from tests.conftest import small_photo


def run(*args, stdin=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=stdin, catch_exceptions=False)


def tree_hashes(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_folder_is_mirrored_and_luminance_is_kept(photo_tree, cnn_checkpoint, tmp_path):
    out = tmp_path / "out"
    result = run(photo_tree, "-o", out, "--model", cnn_checkpoint, "--format", "png")
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["gray.png", "sub/cat.png"]
    for source, output in [("gray.jpg", "gray.png"), ("sub/cat.png", "sub/cat.png")]:
        L_in, _ = read_luminance(photo_tree / source)
        L_out, photo = read_luminance(out / output)
        assert photo.colour and L_out.shape == L_in.shape
        # The original L comes back up to 8-bit rounding of the RGB output.
        assert np.abs(L_out - L_in).mean() < 0.3 and np.abs(L_out - L_in).max() < 1.5


def test_default_output_is_a_sibling_folder(photo_tree, cnn_checkpoint):
    assert run(photo_tree, "--model", cnn_checkpoint).exit_code == 0
    sibling = photo_tree.with_name("photos_colorized")
    assert (sibling / "gray.jpg").is_file() and (sibling / "sub" / "cat.png").is_file()


def test_bad_files_are_named_the_batch_goes_on_and_inputs_are_untouched(photo_tree, cnn_checkpoint, tmp_path):
    good = (photo_tree / "gray.jpg").read_bytes()
    (photo_tree / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (photo_tree / "garbage.png").write_bytes(b"\x89PNG not really")
    before = tree_hashes(photo_tree)
    result = run(photo_tree, "-o", tmp_path / "out", "--model", cnn_checkpoint)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert any("truncated.jpg" in line for line in errors) and any("garbage.png" in line for line in errors)
    assert (tmp_path / "out" / "gray.jpg").is_file() and (tmp_path / "out" / "sub" / "cat.png").is_file()
    assert tree_hashes(photo_tree) == before
    assert not list((tmp_path / "out").rglob("*.tmp-*"))


def test_rerun_skips_finished_outputs_and_overwrite_redoes_them(photo_tree, cnn_checkpoint, tmp_path):
    out = tmp_path / "out"
    run(photo_tree, "-o", out, "--model", cnn_checkpoint)
    output = out / "gray.jpg"
    os.utime(output, (1, 1))
    result = run(photo_tree, "-o", out, "--model", cnn_checkpoint, "--json")
    assert {json.loads(line)["status"] for line in result.output.splitlines()} == {"skipped"}
    assert output.stat().st_mtime == 1
    run(photo_tree, "-o", out, "--model", cnn_checkpoint, "--overwrite")
    assert output.stat().st_mtime > 1


def test_refuses_to_write_into_the_input_folder(photo_tree, cnn_checkpoint):
    result = run(photo_tree, "-o", photo_tree / "colour", "--model", cnn_checkpoint)
    assert result.exit_code == 2
    assert "inside input folder" in result.output
    assert not (photo_tree / "colour").exists()


def test_missing_weights_is_one_line_and_exit_2(photo_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZE_WEIGHTS", str(tmp_path / "no-weights"))
    result = run(photo_tree, "-o", tmp_path / "out", "--model", "gan")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "no shipped weights for model 'gan'" in result.output


def test_sixteen_bit_tiff_gives_sixteen_bit_tiff(tmp_path, cnn_checkpoint):
    scans = tmp_path / "scans"
    scans.mkdir()
    gray16 = (small_photo()[..., 1].astype(np.uint16) * 257 + 100).clip(0, 65535).astype(np.uint16)
    tifffile.imwrite(scans / "scan.tif", gray16)
    assert run(scans, "-o", tmp_path / "out", "--model", cnn_checkpoint).exit_code == 0
    colour = tifffile.imread(tmp_path / "out" / "scan.tif")
    assert colour.dtype == np.uint16 and colour.shape == gray16.shape + (3,)
    # More than 256 distinct levels: the output really uses the 16 bits.
    assert len(np.unique(colour[..., 1])) > 256


def test_exif_orientation_metadata_and_ai_tag(tmp_path, cnn_checkpoint):
    photos = tmp_path / "photos"
    photos.mkdir()
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "Leica"
    Image.fromarray(small_photo(size=(60, 100))[..., 0]).save(photos / "rotated.jpg", exif=exif.tobytes())
    assert run(photos, "-o", tmp_path / "out", "--model", cnn_checkpoint).exit_code == 0
    with Image.open(tmp_path / "out" / "rotated.jpg") as output:
        assert output.size == (60, 100)  # upright: the 100x60 landscape pixels rotated by 90 degrees
        tags = output.getexif()
    assert tags.get(ExifTags.Base.Make) == "Leica"
    assert tags.get(ExifTags.Base.Orientation, 1) == 1
    assert "AI-colorized" in tags[ExifTags.Base.ImageDescription]
    assert tags[ExifTags.Base.Software].startswith("colorize")


def test_shards_split_the_work_exactly(tmp_path, cnn_checkpoint):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(12):
        Image.fromarray(np.full((16, 16), i * 20, np.uint8)).save(photos / f"{i:02}.png")
    outputs = []
    for k in (1, 2, 3):
        result = run(photos, "-o", tmp_path / "out", "--model", cnn_checkpoint, "--shard", f"{k}/3", "--json")
        outputs.append([json.loads(line)["output"] for line in result.output.splitlines()])
    flat = [o for shard in outputs for o in shard]
    assert len(flat) == len(set(flat)) == 12
    assert all(shard for shard in outputs)


def test_json_and_files_from_stdin(photo_tree, cnn_checkpoint, tmp_path):
    listing = f"{photo_tree / 'gray.jpg'}\n{photo_tree / 'sub' / 'cat.png'}\n"
    result = run("--files-from", "-", "-o", tmp_path / "out", "--model", cnn_checkpoint, "--json", stdin=listing)
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.output.splitlines()]
    assert {r["status"] for r in records} == {"done"}
    assert set(records[0]) == {"source", "output", "status", "error", "seconds"}
    assert sorted(os.path.relpath(r["output"], tmp_path / "out") for r in records) == ["gray.jpg", "sub/cat.png"]


def test_same_input_same_bytes(photo_tree, cnn_checkpoint, tmp_path):
    for name in ("a", "b"):
        run(photo_tree, "-o", tmp_path / name, "--model", cnn_checkpoint, "--saturation", "1.3")
    assert list(tree_hashes(tmp_path / "a").values()) == list(tree_hashes(tmp_path / "b").values())


def test_saturation_scales_chroma(photo_tree, cnn_checkpoint, tmp_path):
    chroma = {}
    for factor in ("0", "1", "2"):
        run(photo_tree, "-o", tmp_path / factor, "--model", cnn_checkpoint, "--format", "png", "--saturation", factor)
        pixels = read_image(tmp_path / factor / "sub" / "cat.png").pixels
        chroma[factor] = np.abs(pixels - pixels.mean(axis=2, keepdims=True)).mean()
    assert chroma["0"] < 0.003 < chroma["1"] < chroma["2"]


def test_diagnostics_panel_and_sidecar(photo_tree, cnn_checkpoint, tmp_path):
    out = tmp_path / "out"
    assert run(photo_tree, "-o", out, "--model", cnn_checkpoint, "--diagnostics").exit_code == 0
    with Image.open(out / "sub" / "cat.png.diagnostics.png") as panel:
        assert panel.height == 256 and panel.width == 4 * round(128 * 256 / 96)
    sidecar = json.loads((out / "sub" / "cat.png.diagnostics.json").read_text())
    assert sidecar["model"] == "cnn" and len(sidecar["checkpoint_sha256"]) == 64
    assert sidecar["render_size"] == 256 and sidecar["mean_chroma"] >= 0 and sidecar["colourfulness"] >= 0
    assert {"read", "network", "colour"} <= set(sidecar["timings_seconds"])


def test_help_teaches():
    result = run("colorize", "--help")
    assert "Colour and gray inputs both work" in result.output and "Examples:" in result.output
    assert "--shard" in result.output and "SHORT side" in result.output


def _peak_rss_mb(code):
    """Peak RSS (MB) of a fresh Python process running `code`."""
    script = f"import resource, sys\n{code}\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return float(result.stdout.split()[-1])


@pytest.mark.slow
def test_large_image_is_processed_in_strips_with_bounded_memory(tmp_path, cnn_checkpoint):
    big = tmp_path / "big"
    big.mkdir()
    height, width = 2500, 4000  # 10 MP: affordable in CI, large enough to see full-size temporaries
    Image.fromarray(small_photo(size=(250, 400))[..., 0]).resize((width, height)).save(big / "scan.png")
    baseline = _peak_rss_mb("import colorize_cli.cli, torch; torch.ones(1)")
    peak = _peak_rss_mb(
        "from colorize_cli.cli import cli\n"
        f"try: cli([{str(big)!r}, '-o', {str(tmp_path / 'out')!r}, '--model', {str(cnn_checkpoint)!r}, '-q'])\n"
        "except SystemExit as e: assert e.code == 0, e.code"
    )
    per_pixel = (peak - baseline) * 2**20 / (height * width)
    # Needed: L as float32 (4 B/px), the uint8 RGB output (3), the decoded file and its float copy (5),
    # and the encoder's buffers. One full-size float RGB or Lab temporary alone would add 12 B/px.
    # Measured 14.6 B/px here (a 24 MP JPEG: 614 MB peak, 285 MB of it the interpreter and torch).
    assert per_pixel < 22, f"{per_pixel:.1f} bytes per pixel"
    assert (tmp_path / "out" / "scan.png").is_file()


def test_batches_of_same_size_images_match_one_by_one(tmp_path, cnn_checkpoint):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, name in enumerate(["astronaut", "chelsea", "coffee", "rocket"]):
        Image.fromarray(small_photo(name)[..., 1]).save(photos / f"{i}.png")
    Image.fromarray(small_photo(size=(64, 80))[..., 0]).save(photos / "odd_size.png")
    (photos / "broken.png").write_bytes(b"broken")
    for batch in ("1", "4"):
        result = run(photos, "-o", tmp_path / batch, "--model", cnn_checkpoint, "--batch-size", batch, "--json")
        assert result.exit_code == 1
        assert [json.loads(line)["status"] for line in result.stdout.splitlines()] == ["done"] * 4 + ["failed", "done"]
    for output in sorted((tmp_path / "1").glob("*.png")):
        one = np.asarray(Image.open(output), np.int16)
        batched = np.asarray(Image.open(tmp_path / "4" / output.name), np.int16)
        assert np.abs(one - batched).max() <= 1


def test_a_gray_profile_is_not_carried_into_the_colour_result_and_that_is_said(cnn_checkpoint, tmp_path):
    import imagecodecs

    photos = tmp_path / "photos"
    photos.mkdir()
    gray = small_photo("astronaut")[..., 0]
    Image.fromarray(gray).save(photos / "profiled.png", icc_profile=imagecodecs.cms_profile("gray"))
    Image.fromarray(gray).save(photos / "plain.png")

    with pytest.warns(UserWarning) as said:
        result = run(photos, "-o", tmp_path / "out", "--model", cnn_checkpoint)

    assert result.exit_code == 0, result.output
    messages = [str(warning.message) for warning in said]
    assert [m for m in messages if "gray ICC profile" in m] == [
        f"{photos / 'profiled.png'}: its gray ICC profile cannot describe a colour result and is not carried over; "
        "its gray levels are taken as sRGB's"]
    with Image.open(tmp_path / "out" / "profiled.png") as out:
        assert "icc_profile" not in out.info and out.mode == "RGB"


def test_json_names_every_source_as_it_was_given(photo_tree, cnn_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(photo_tree.parent)
    listing = "photos/gray.jpg\nphotos/missing.jpg\n"

    result = run("--files-from", "-", "-o", tmp_path / "out", "--model", cnn_checkpoint, "--json", stdin=listing)

    assert result.exit_code == 1  # the missing one
    sources = [json.loads(line)["source"] for line in result.stdout.splitlines() if line.startswith("{")]
    assert sorted(sources) == ["photos/gray.jpg", "photos/missing.jpg"]
