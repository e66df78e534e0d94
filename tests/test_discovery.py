"""Input discovery, tree mirroring, refusal to write over inputs, and sharding."""

import io
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colorize_cli.photos.discovery import (
    InputError,
    Job,
    default_output_dir,
    in_shard,
    parse_shard,
    plan_jobs,
    read_path_list,
    walk_images,
)


def _tree(root):
    for relative in ["a.jpg", "sub/b.PNG", "sub/deeper/c.tif", "sub/notes.txt", ".hidden.jpg", "d.gif"]:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return root


def test_folder_tree_is_mirrored_and_non_images_skipped(tmp_path):
    photos = _tree(tmp_path / "photos")
    jobs = plan_jobs([photos], tmp_path / "out")
    assert [job.relative.as_posix() for job in jobs] == ["a.jpg", "d.gif", "sub/b.PNG", "sub/deeper/c.tif"]
    assert [job.output.relative_to(tmp_path / "out").as_posix() for job in jobs] == [
        "a.jpg", "d.png", "sub/b.png", "sub/deeper/c.tif"]


def test_format_choice_and_default_output_dir(tmp_path):
    photos = _tree(tmp_path / "photos")
    jobs = plan_jobs([photos], tmp_path / "out", "tif")
    assert {job.output.suffix for job in jobs} == {".tif"}
    assert default_output_dir([photos]) == (tmp_path / "photos_colorized").resolve()
    assert default_output_dir([photos / "a.jpg"]) == (tmp_path / "photos_colorized").resolve()


def test_several_inputs_each_get_a_subfolder_and_loose_files_share_a_root(tmp_path):
    first, second = _tree(tmp_path / "one"), _tree(tmp_path / "two")
    jobs = plan_jobs([first, second, first / "sub" / "b.PNG"], tmp_path / "out")
    relatives = {job.relative.as_posix() for job in jobs}
    assert "one/a.jpg" in relatives and "two/sub/b.PNG" in relatives


def test_refuses_output_inside_input_and_over_an_input(tmp_path):
    photos = _tree(tmp_path / "photos")
    with pytest.raises(InputError, match="inside input folder"):
        plan_jobs([photos], photos / "colour")
    with pytest.raises(InputError, match="inside input folder"):
        plan_jobs([photos], photos)
    with pytest.raises(InputError, match="is an input file"):
        plan_jobs([photos / "sub" / "deeper" / "c.tif"], photos / "sub" / "deeper")
    [missing] = plan_jobs([tmp_path / "missing"], tmp_path / "out")
    assert (missing.source, missing.error) == (tmp_path / "missing", "no such file or folder")


def test_symlink_loops_are_not_followed(tmp_path):
    photos = _tree(tmp_path / "photos")
    (photos / "sub" / "loop").symlink_to(photos, target_is_directory=True)
    assert len(walk_images(photos)) == 4


def test_files_from_lines():
    stream = io.StringIO("a.jpg\n\n  \nwith space.png\r\n")
    assert [p.as_posix() for p in read_path_list(stream)] == ["a.jpg", "with space.png"]


def test_shards_partition_exactly(tmp_path):
    photos = tmp_path / "photos"
    for i in range(200):
        (photos / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (photos / f"d{i % 7}" / f"{i}.jpg").write_bytes(b"x")
    jobs = plan_jobs([photos], tmp_path / "out")
    shards = [[job for job in jobs if in_shard(job, k, 4)] for k in range(1, 5)]
    assert sorted(j.relative for shard in shards for j in shard) == sorted(j.relative for j in jobs)
    assert all(20 < len(shard) < 80 for shard in shards)
    assert parse_shard("2/4") == (2, 4)
    for bad in ["0/4", "5/4", "x", "1/"]:
        with pytest.raises(InputError):
            parse_shard(bad)


# Any name a POSIX file system holds: bytes without '/' or NUL, decoded as Python does (odd bytes as surrogates).
_names = st.binary(min_size=1, max_size=12).filter(lambda raw: b"/" not in raw and b"\0" not in raw).map(os.fsdecode)


@settings(max_examples=60, deadline=None)
@given(st.sets(st.lists(_names, min_size=1, max_size=3).map(lambda parts: Path(*parts)), max_size=40),
       st.integers(1, 16))
def test_every_file_is_in_exactly_one_shard(relatives, count):
    jobs = [Job(source=Path("in") / relative, relative=relative, output=Path("out") / relative) for relative in relatives]
    for job in jobs:
        assert sum(in_shard(job, index, count) for index in range(1, count + 1)) == 1
