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


def test_refuses_an_output_folder_that_holds_a_loose_input_file(tmp_path):
    photos = _tree(tmp_path / "photos")
    with pytest.raises(InputError, match="a.png would be written beside input file .*a.jpg"):
        plan_jobs([photos / "a.jpg"], photos, "png")  # a.png would land among the originals
    with pytest.raises(InputError, match="would be written beside input file .*b.PNG"):
        plan_jobs([photos / "a.jpg", photos / "sub" / "b.PNG"], photos / "sub")
    assert len(plan_jobs([photos / "a.jpg"], photos / "colour")) == 1  # a new folder beside it is fine
    assert len(plan_jobs([photos / "sub" / "b.PNG"], photos, "png")) == 1  # as a folder input may: photos/b.png
    assert len(plan_jobs([photos / "sub"], photos, "png")) == 2


def test_listed_files_inside_the_output_folder_are_skipped_and_the_layout_kept(tmp_path):
    photos = _tree(tmp_path / "photos")
    out = photos / "out"
    first = plan_jobs([photos / "sub" / "b.PNG"], out)
    (out / "b.png").parent.mkdir(parents=True)
    (out / "b.png").write_bytes(b"x")  # the first run's result, named by a second `find`

    with pytest.warns(UserWarning, match="skipping 1 listed file.*results of an earlier run"):
        again = plan_jobs([photos / "sub" / "b.PNG", out / "b.png"], out)

    assert [(job.source, job.output) for job in again] == [(job.source, job.output) for job in first]
    (out / "mine").mkdir()
    (out / "mine" / "x.jpg").write_bytes(b"x")  # no result of this plan: the user's own file, an input
    with_theirs = plan_jobs([photos / "sub" / "b.PNG", out / "mine" / "x.jpg"], out)
    assert [job.source.name for job in with_theirs] == ["b.PNG", "x.jpg"]


def test_diagnostics_sidecars_take_part_in_the_collision_check(tmp_path):
    from colorize_cli.colorize.diagnostics import diagnostics_paths
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "a.jpg"):
        (photos / name).write_bytes(b"x")
    jobs = plan_jobs([photos], tmp_path / "out", sidecars=diagnostics_paths)
    panels = {diagnostics_paths(job.output)[0].name for job in jobs}
    assert panels == {"a.png.diagnostics.png", "a.jpg.diagnostics.png"}

    (photos / "a.jpg.diagnostics.png").write_bytes(b"x")  # its result is a.png's panel
    with pytest.raises(InputError, match="would both be written to"):
        plan_jobs([photos], tmp_path / "out", sidecars=diagnostics_paths)
    assert len(plan_jobs([photos], tmp_path / "out")) == 3  # without diagnostics nothing collides


def test_the_root_folder_has_no_default_output_folder():
    with pytest.raises(InputError, match="choose one with -o"):
        default_output_dir([Path("/")])


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
