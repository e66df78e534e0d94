"""prep-dataset: every source kind, every filter, hostile archives, split stability, resume and the ab prior."""

import io
import json
import os
import stat
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageCms
from skimage.color import rgb2lab

from colorize_cli.cli import cli
from colorize_cli.colour.ab_bins import bin_centers, smoothed_prior
from colorize_cli.prep.perceptual_hash import NearDuplicateIndex
from colorize_cli.prep.photo import PhotoOptions, chroma_spread, decode_photo
from colorize_cli.prep.pipeline import PrepOptions, prep_dataset
from colorize_cli.prep.sources import SourceError
from colorize_cli.prep.splits import split_for
from tests.prep_helpers import jpeg_bytes, make_photo, write_photos

SMALL = PhotoOptions(size=48, min_size=32)
OPTIONS = PrepOptions(photo=SMALL, max_file_bytes=200_000, progress=False)


def manifest(out):
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def stats(out):
    return json.loads((out / "stats.json").read_text())


def stored_pixels(out, row):
    """A kept photo's pixels, read back from its shard."""
    data = np.fromfile(out / "shards" / f"{row['shard']}.bin", np.uint8)
    shape = (row["height"], row["width"], 3)
    return data[row["offset"] : row["offset"] + np.prod(shape)].reshape(shape)


def files_outside(root, out):
    return sorted(p for p in root.rglob("*") if out not in p.parents and p != out)


# ---- folders and filters ------------------------------------------------------------------------------


def _filter_zoo(folder):
    """Six good photos plus one photo for every filter (and a text file)."""
    write_photos(folder, range(6))
    photo = make_photo(0)
    grey = photo.astype(float) @ [0.299, 0.587, 0.114]
    sepia = np.stack([grey * 1.07, grey * 0.74, grey * 0.43], -1).clip(0, 255).astype(np.uint8)
    (folder / "small.jpg").write_bytes(jpeg_bytes(make_photo(50, (20, 24))))
    (folder / "wide.jpg").write_bytes(jpeg_bytes(make_photo(51, (40, 200))))
    (folder / "grey.jpg").write_bytes(jpeg_bytes(grey.astype(np.uint8)))
    (folder / "sepia.jpg").write_bytes(jpeg_bytes(sepia))
    (folder / "truncated.jpg").write_bytes(jpeg_bytes(make_photo(52))[:400])
    (folder / "zz-near.jpg").write_bytes(jpeg_bytes(photo, quality=60))
    (folder / "zz-copy.jpg").write_bytes((folder / "photo-001.jpg").read_bytes())
    Image.fromarray(make_photo(53, (200, 200))).save(folder / "bomb.png")
    (folder / "notes.txt").write_text("not a photo")


def test_every_filter_is_counted(tmp_path):
    _filter_zoo(tmp_path / "src")
    options = PrepOptions(photo=PhotoOptions(size=48, min_size=32, max_pixels=20_000), progress=False)
    report = prep_dataset([tmp_path / "src"], tmp_path / "out", options)
    expected = {
        "too_small": 1, "extreme_aspect": 1, "grayscale_or_sepia": 2, "unreadable": 1,
        "near_duplicate": 1, "duplicate": 1, "too_large_image": 1, "not_an_image": 1,
    }
    assert report.skipped == expected
    assert stats(tmp_path / "out")["skipped"] == expected
    # Only the file that could not be read is a failure; the filters' drops are counted, not named.
    assert report.failures.count == 1 and report.failures.named[0].startswith("src/truncated.jpg: unreadable (")
    assert stats(tmp_path / "out")["failures"] == report.failures.named
    rows = manifest(tmp_path / "out")
    assert sorted(row["source"] for row in rows) == [f"src/photo-{i:03d}.jpg" for i in range(6)]
    assert report.candidates == 14  # every image-named file; the text file never was a candidate


def test_chroma_spread_is_zero_for_tints_and_large_for_colour():
    strength = torch.linspace(0, 20, 100)
    sepia = torch.stack([strength * 0.4, strength * 0.9])  # one hue, varying strength
    opposite = torch.cat([sepia, -sepia], dim=1)  # blue and yellow: one line, both sides
    crossed = torch.cat([sepia, torch.stack([strength * 0.9, -strength * 0.4])], dim=1)
    assert chroma_spread(torch.zeros(2, 100)) == 0
    assert chroma_spread(sepia) < 1e-6
    assert chroma_spread(opposite) > 5 and chroma_spread(crossed) > 5


def test_near_duplicates_are_kept_when_dedupe_is_off(tmp_path):
    _filter_zoo(tmp_path / "src")
    options = PrepOptions(photo=PhotoOptions(size=48, min_size=32, max_pixels=20_000), dedupe_distance=-1,
                          progress=False)
    report = prep_dataset([tmp_path / "src"], tmp_path / "out", options)
    assert "near_duplicate" not in report.skipped and report.skipped["duplicate"] == 1


def test_photos_are_resized_oriented_and_stored_as_rgb(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    (src / "rotated.jpg").write_bytes(jpeg_bytes(make_photo(1, (60, 80)), exif=exif))
    (src / "big.jpg").write_bytes(jpeg_bytes(make_photo(2, (96, 128))))
    report = prep_dataset([src], tmp_path / "out", OPTIONS)
    assert report.skipped == {}
    rows = {row["source"]: row for row in manifest(tmp_path / "out")}
    assert (rows["src/big.jpg"]["height"], rows["src/big.jpg"]["width"]) == (48, 64)  # short side 48
    assert (rows["src/rotated.jpg"]["height"], rows["src/rotated.jpg"]["width"]) == (64, 48)  # upright
    expected = np.asarray(Image.open(src / "big.jpg").resize((64, 48), Image.Resampling.LANCZOS))
    assert np.abs(stored_pixels(tmp_path / "out", rows["src/big.jpg"]).astype(int) - expected).mean() < 2


def test_icc_profiles_are_applied_and_broken_ones_ignored():
    pixels = make_photo(3)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    plain = decode_photo(jpeg_bytes(pixels), 256)
    tagged = decode_photo(jpeg_bytes(pixels, icc_profile=profile), 256)
    broken = decode_photo(jpeg_bytes(pixels, icc_profile=b"not a profile"), 256)
    assert np.abs(tagged.astype(int) - plain).max() <= 2
    assert np.array_equal(broken, plain)


def test_links_and_special_files_in_folders_are_skipped(tmp_path):
    src = tmp_path / "src"
    write_photos(src / "nested" / "deeper", range(3))
    os.symlink(src / "nested" / "deeper" / "photo-000.jpg", src / "link.jpg")
    os.symlink(src / "nested", src / "linked-folder")
    os.mkfifo(src / "pipe.jpg")
    report = prep_dataset([src], tmp_path / "out", OPTIONS)
    assert report.skipped == {"link": 2, "special_file": 1}
    assert sum(report.images.values()) == 3


# ---- archives -----------------------------------------------------------------------------------------

GOOD = {f"photos/p{i}.jpg": jpeg_bytes(make_photo(i)) for i in range(4)}
BIG = 300_000  # over OPTIONS.max_file_bytes


def _tar_member(tar, name, data=b"", kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, len(data)
    tar.addfile(info, io.BytesIO(data) if data else None)


def build_tar(path, mode):
    with tarfile.open(path, mode) as tar:
        for name, data in GOOD.items():
            _tar_member(tar, name, data)
        _tar_member(tar, "/abs/evil.jpg", GOOD["photos/p0.jpg"])
        _tar_member(tar, "photos/../../evil.jpg", GOOD["photos/p1.jpg"])
        _tar_member(tar, "sym.jpg", kind=tarfile.SYMTYPE, linkname="/etc/passwd")
        _tar_member(tar, "hard.jpg", kind=tarfile.LNKTYPE, linkname="photos/p0.jpg")
        _tar_member(tar, "dev.jpg", kind=tarfile.CHRTYPE)
        _tar_member(tar, "fifo.jpg", kind=tarfile.FIFOTYPE)
        _tar_member(tar, "readme.txt", b"hello")
        _tar_member(tar, "broken.jpg", b"\xff\xd8\xff not a jpeg")
        _tar_member(tar, "bomb.jpg", bytes(BIG))


def _zip_member(archive, name, data=b"", mode=stat.S_IFREG | 0o644):
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def build_zip(path, mode=None):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in GOOD.items():
            _zip_member(archive, name, data)
        _zip_member(archive, "/abs/evil.jpg", GOOD["photos/p0.jpg"])
        _zip_member(archive, "photos/../../evil.jpg", GOOD["photos/p1.jpg"])
        _zip_member(archive, "sym.jpg", b"/etc/passwd", stat.S_IFLNK | 0o777)
        _zip_member(archive, "dev.jpg", b"", stat.S_IFCHR | 0o644)
        _zip_member(archive, "readme.txt", b"hello")
        _zip_member(archive, "broken.jpg", b"\xff\xd8\xff not a jpeg")
        _zip_member(archive, "bomb.jpg", bytes(BIG))  # a few hundred bytes compressed


HOSTILE = {"absolute_path": 1, "parent_path": 1, "not_an_image": 1, "too_large_file": 1, "unreadable": 1}


@pytest.mark.parametrize(
    "name, build, mode, extra",
    [
        ("set.tar", build_tar, "w", {"link": 2, "special_file": 2}),
        ("set.tar.gz", build_tar, "w:gz", {"link": 2, "special_file": 2}),
        ("set.zip", build_zip, None, {"link": 1, "special_file": 1}),
    ],
)
def test_hostile_archives_are_read_safely(tmp_path, name, build, mode, extra):
    build(tmp_path / name, mode)
    out = tmp_path / "out"
    before = files_outside(tmp_path, out)
    report = prep_dataset([tmp_path / name], out, OPTIONS)
    assert report.skipped == {**HOSTILE, **extra}
    assert report.failures.named == [f"{name}/broken.jpg: unreadable (not an image file)"]  # hostile is no failure
    assert sorted(row["source"] for row in manifest(out)) == [f"{name}/{member}" for member in GOOD]
    assert files_outside(tmp_path, out) == before  # nothing written or extracted outside -o


def test_zip_members_without_a_file_type_are_regular_files(tmp_path):
    # zipfile.writestr(name, ...) stores mode 0o600 and no file type; other tools store no mode at all.
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as archive:
        archive.writestr("photos/p0.jpg", GOOD["photos/p0.jpg"])
        _zip_member(archive, "photos/p1.jpg", GOOD["photos/p1.jpg"], mode=0o644)
        _zip_member(archive, "photos/p2.jpg", GOOD["photos/p2.jpg"], mode=0)
        _zip_member(archive, "sym.jpg", b"/etc/passwd", stat.S_IFLNK | 0o777)
        _zip_member(archive, "fifo.jpg", b"", stat.S_IFIFO | 0o644)
    report = prep_dataset([tmp_path / "plain.zip"], tmp_path / "out", OPTIONS)
    assert report.skipped == {"link": 1, "special_file": 1}
    assert [row["source"] for row in manifest(tmp_path / "out")] == [f"plain.zip/photos/p{i}.jpg" for i in range(3)]


def test_truncated_tar_gz_keeps_what_came_before(tmp_path):
    build_tar(tmp_path / "full.tar.gz", "w:gz")
    data = (tmp_path / "full.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) * 2 // 3])
    report = prep_dataset([tmp_path / "cut.tar.gz"], tmp_path / "out", OPTIONS)
    assert report.skipped["truncated_archive"] == 1
    assert report.failures.named[-1].startswith("cut.tar.gz: truncated_archive (")
    assert 1 <= sum(report.images.values()) <= len(GOOD)


def test_unreadable_sources_are_refused_before_any_work(tmp_path):
    build_zip(tmp_path / "full.zip")
    data = (tmp_path / "full.zip").read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])  # the central directory is gone
    (tmp_path / "fake.tar").write_bytes(b"this is not a tar archive at all" * 20)
    with pytest.raises(SourceError, match="cut.zip: not a readable zip archive"):
        prep_dataset([tmp_path / "cut.zip"], tmp_path / "out", OPTIONS)
    with pytest.raises(SourceError, match="fake.tar: not a readable tar archive"):
        prep_dataset([tmp_path / "fake.tar"], tmp_path / "out2", OPTIONS)
    with pytest.raises(SourceError, match="no such file or folder"):
        prep_dataset([tmp_path / "missing"], tmp_path / "out3", OPTIONS)
    assert not (tmp_path / "out3").exists()


# ---- labels -------------------------------------------------------------------------------------------


def test_places_list_gives_labels_and_skips_bad_rows(tmp_path):
    images = tmp_path / "data_256"
    write_photos(images / "a" / "airfield", [1])
    write_photos(images / "b" / "beach", [2])
    (tmp_path / "list.txt").write_text(
        "/../../etc/photo-004.jpg 0\n/a/airfield/photo-001.jpg 0\n/b/beach/photo-002.jpg 1\n"
        "/c/canyon/photo-003.jpg 2\na row without an index\n/a/airfield/photo-001.jpg \u00b2\n"
    )
    options = PrepOptions(photo=SMALL, images_root=images, progress=False)
    report = prep_dataset([tmp_path / "list.txt"], tmp_path / "out", options)
    assert report.skipped == {"missing_file": 1, "bad_row": 2, "parent_path": 1}  # '\u00b2' (²) is no index
    assert report.failures.named == ["list.txt/c/canyon/photo-003.jpg: missing_file"]
    assert {row["source"]: row["label"] for row in manifest(tmp_path / "out")} == {
        "list.txt/a/airfield/photo-001.jpg": 0,
        "list.txt/b/beach/photo-002.jpg": 1,
    }
    summary = stats(tmp_path / "out")
    # Labels come from the rows that were read: not '../../etc' (refused), nor c/canyon (missing).
    assert summary["num_labels"] == 2
    assert summary["labels"] == {"0": "a/airfield", "1": "b/beach"}


def test_a_clean_places_list_counts_no_bad_rows(tmp_path):
    write_photos(tmp_path / "a" / "airfield", [1])
    (tmp_path / "list.txt").write_text("a/airfield/photo-001.jpg 0\n")
    report = prep_dataset([tmp_path / "list.txt"], tmp_path / "out", OPTIONS)
    assert report.skipped == {} and stats(tmp_path / "out")["skipped"] == {}
    result = CliRunner().invoke(cli, ["prep-dataset", str(tmp_path / "list.txt"), "-o", str(tmp_path / "o2"),
                                      "--size", "48", "--min-size", "32", "--workers", "1"])
    assert result.exit_code == 0 and "skipped" not in result.output


def test_places_list_never_leaves_the_images_root_through_a_linked_folder(tmp_path):
    images, outside = tmp_path / "images", tmp_path / "outside"
    write_photos(images / "a", [1])
    write_photos(images / "b", [2])
    write_photos(outside, [11])
    os.symlink(outside, images / "evil")  # leads out of the root
    os.symlink(images / "b", images / "alias")  # stays inside it
    (images / "list.txt").write_text("evil/photo-011.jpg 0\na/photo-001.jpg 1\nalias/photo-002.jpg 2\n")
    report = prep_dataset([images / "list.txt"], tmp_path / "out", OPTIONS)
    assert report.skipped == {"outside_root": 1}
    assert [row["source"] for row in manifest(tmp_path / "out")] == ["list.txt/a/photo-001.jpg",
                                                                      "list.txt/alias/photo-002.jpg"]
    assert stats(tmp_path / "out")["labels"] == {"1": "a", "2": "alias"}


def test_labels_option_labels_archive_members(tmp_path):
    with tarfile.open(tmp_path / "places.tar", "w") as tar:
        _tar_member(tar, "data_256/a/airfield/1.jpg", jpeg_bytes(make_photo(1)))
        _tar_member(tar, "data_256/b/beach/2.jpg", jpeg_bytes(make_photo(2)))
        _tar_member(tar, "data_256/z/unlisted/3.jpg", jpeg_bytes(make_photo(3)))
    (tmp_path / "list.txt").write_text("/a/airfield/1.jpg 0\n/b/beach/2.jpg 1\n")
    options = PrepOptions(photo=SMALL, labels=tmp_path / "list.txt", progress=False)
    prep_dataset([tmp_path / "places.tar"], tmp_path / "out", options)
    assert [row["label"] for row in manifest(tmp_path / "out")] == [0, 1, -1]


# ---- split, resume, statistics ------------------------------------------------------------------------


def test_split_depends_on_content_only_and_adding_images_never_moves_old_ones(tmp_path):
    write_photos(tmp_path / "src", range(12))
    options = PrepOptions(photo=SMALL, val_fraction=0.4, progress=False)
    prep_dataset([tmp_path / "src"], tmp_path / "a", options)
    write_photos(tmp_path / "src", range(100, 112))
    prep_dataset([tmp_path / "src"], tmp_path / "b", options)
    before = {row["hash"]: row["split"] for row in manifest(tmp_path / "a")}
    after = {row["hash"]: row["split"] for row in manifest(tmp_path / "b")}
    assert len(after) == 24 and {h: after[h] for h in before} == before
    assert set(after.values()) == {"train", "val"}
    digests = [f"{int(x):064x}" for x in np.random.default_rng(0).integers(0, 2**63, 20_000)]
    digests = [d[-8:] + d[:-8] for d in digests]  # uniform leading digits
    assert abs(sum(split_for(d, 0.05) == "val" for d in digests) / len(digests) - 0.05) < 0.01


def test_rerun_skips_finished_shards_and_redoes_changed_ones(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    write_photos(src, range(10))
    options = PrepOptions(photo=SMALL, shard_images=3, progress=False)
    first = prep_dataset([src], out, options)
    assert (first.shards_written, first.shards_reused) == (4, 0)
    times = {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()}
    rows = manifest(out)

    again = prep_dataset([src], out, options)
    assert (again.shards_written, again.shards_reused) == (0, 4)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()} == times
    assert manifest(out) == rows

    write_photos(src, [999])  # sorts last: only the last chunk changes
    grown = prep_dataset([src], out, options)
    assert (grown.shards_written, grown.shards_reused) == (1, 3)
    assert len(manifest(out)) == 11

    resized = prep_dataset([src], out, PrepOptions(photo=PhotoOptions(size=40, min_size=32), shard_images=3,
                                                   progress=False))
    assert resized.shards_written == 4 and {row["height"] for row in manifest(out)} == {40}

    prep_dataset([src], out, PrepOptions(photo=SMALL, shard_images=3, limit=4, progress=False))
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["00000.bin", "00000.json", "00001.bin", "00001.json"]


def test_workers_give_the_same_result_as_one_process(tmp_path):
    write_photos(tmp_path / "src", range(8))
    prep_dataset([tmp_path / "src"], tmp_path / "one", OPTIONS)
    prep_dataset([tmp_path / "src"], tmp_path / "two", PrepOptions(photo=SMALL, workers=2, progress=False))
    assert manifest(tmp_path / "one") == manifest(tmp_path / "two")
    assert (tmp_path / "one/shards/00000.bin").read_bytes() == (tmp_path / "two/shards/00000.bin").read_bytes()


def _reference_counts(out):
    """Histogram of the training photos' pixels over the 313 bins, in numpy with skimage's Lab."""
    centers = bin_centers().double().numpy()
    counts = np.zeros(len(centers), np.int64)
    for row in manifest(out):
        if row["split"] == "train":
            ab = rgb2lab(stored_pixels(out, row))[..., 1:].reshape(-1, 2)
            nearest = ((ab[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)
            counts += np.bincount(nearest, minlength=len(centers))
    return counts


def test_stats_prior_matches_a_numpy_histogram(tmp_path):
    # Photos of at most 32x32 pixels: the histogram samples every pixel, like the reference.
    write_photos(tmp_path / "src", range(6), size=(24, 32))
    options = PrepOptions(photo=PhotoOptions(size=32, min_size=16), val_fraction=0.3, progress=False)
    prep_dataset([tmp_path / "src"], tmp_path / "out", options)
    summary = stats(tmp_path / "out")
    counts, reference = np.array(summary["ab_counts"]), _reference_counts(tmp_path / "out")
    assert counts.sum() == reference.sum() == 24 * 32 * summary["images"]["train"]
    assert np.abs(counts - reference).sum() <= 0.002 * reference.sum()  # float32 vs float64 at bin edges
    prior = np.array(summary["ab_prior"])
    assert prior.shape == (313,) and abs(prior.sum() - 1) < 1e-6 and prior.min() >= 0
    assert np.allclose(prior, smoothed_prior(torch.from_numpy(counts).double()).numpy())


def test_near_duplicate_index_agrees_with_brute_force():
    rng = np.random.default_rng(0)
    index, seen = NearDuplicateIndex(max_distance=6), []
    for _ in range(400):
        if seen and rng.random() < 0.5:  # a neighbour of an earlier hash, 0 to 12 bits away
            flips = rng.choice(128, size=int(rng.integers(0, 13)), replace=False)
            value = seen[int(rng.integers(len(seen)))] ^ sum(1 << int(bit) for bit in flips)
        else:
            value = int.from_bytes(rng.bytes(16), "big")
        near = any((value ^ other).bit_count() <= 6 for other in seen)
        assert index.add(value) == near
        if not near:
            seen.append(value)


# ---- command line -------------------------------------------------------------------------------------


def prep_command(*args):
    return CliRunner().invoke(cli, ["prep-dataset", *map(str, args), "--size", "48", "--min-size", "32",
                                    "--workers", "1"])


def test_command_summarises_and_fails_in_one_line(tmp_path):
    write_photos(tmp_path / "src", range(5))
    (tmp_path / "src" / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    (tmp_path / "src" / "tiny.jpg").write_bytes(jpeg_bytes(make_photo(60, (20, 24))))  # a filter's, not a failure
    runner = CliRunner()
    for _ in range(2):  # the rerun reuses the shard, and still names the failure
        result = prep_command(tmp_path / "src", "-o", tmp_path / "out")
        assert result.exit_code == 1, result.output
        assert "5 photos kept" in result.stdout and "skipped unreadable: 1" in result.stdout
        assert result.stderr == "error: src/broken.jpg: unreadable (not an image file)\n"
    assert stats(tmp_path / "out")["failed"] == 1
    assert stats(tmp_path / "out")["failures"] == ["src/broken.jpg: unreadable (not an image file)"]

    (tmp_path / "src" / "broken.jpg").unlink()
    result = prep_command(tmp_path / "src", "-o", tmp_path / "out")
    assert result.exit_code == 0 and result.stderr == "" and "skipped too_small: 1" in result.stdout

    result = runner.invoke(cli, ["prep-dataset", str(tmp_path / "nope.zip"), "-o", str(tmp_path / "o2")])
    assert result.exit_code == 2 and result.output.strip().splitlines()[-1].endswith("no such file or folder")

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    result = runner.invoke(cli, ["prep-dataset", str(tmp_path / "empty"), "-o", str(tmp_path / "o3")])
    assert result.exit_code == 2 and "no usable photos" in result.output


def test_command_names_the_first_failures_of_a_huge_dump(tmp_path):
    write_photos(tmp_path / "src", [1])
    for i in range(53):
        (tmp_path / "src" / f"bad-{i:02d}.jpg").write_bytes(b"\xff\xd8\xff")
    result = prep_command(tmp_path / "src", "-o", tmp_path / "out")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[:50] == [f"error: src/bad-{i:02d}.jpg: unreadable (not an image file)" for i in range(50)]
    assert lines[50:] == ["error: 3 more files failed; they are in the skip counts"]
    assert stats(tmp_path / "out")["failed"] == 53 and len(stats(tmp_path / "out")["failures"]) == 50


def test_a_failed_file_with_a_newline_in_its_name_stays_on_one_line(tmp_path):
    write_photos(tmp_path / "src", [1])
    (tmp_path / "src" / "two\nlines.jpg").write_bytes(b"\xff\xd8\xff")
    result = prep_command(tmp_path / "src", "-o", tmp_path / "out")
    assert result.exit_code == 1 and result.stderr == "error: src/two\\nlines.jpg: unreadable (not an image file)\n"


def test_output_inside_a_source_folder_is_refused(tmp_path):
    src = tmp_path / "src"
    write_photos(src / "nested", range(2))
    os.symlink(src, tmp_path / "link")
    before = sorted(src.rglob("*"))
    for out in (src, src / "nested", src / "new", tmp_path / "link" / "nested"):
        result = prep_command(src, "-o", out)
        assert result.exit_code == 2, out
        assert result.output.count("\n") == 1 and "is inside input folder" in result.output
    assert sorted(src.rglob("*")) == before  # nothing written into the source
    result = prep_command(src, "-o", tmp_path)  # an output folder above a source is fine
    assert result.exit_code == 0, result.output
    assert len(manifest(tmp_path)) == 2


def test_help_teaches_with_examples():
    result = CliRunner().invoke(cli, ["prep-dataset", "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output and "--labels" in result.output and "photos.tsv" in result.output
    assert "Exit codes: 0" in result.output
