"""scripts/copy_split.py: a prepared split's original photos copied to a plain folder, by source folder and count."""

import json

import pytest

from colorize_cli.prep.photo import PhotoOptions
from colorize_cli.prep.pipeline import PrepOptions, prep_dataset
from tests.conftest import load_script
from tests.prep_helpers import write_photos


@pytest.fixture(scope="module")
def copy_split():
    return load_script("scripts/copy_split.py")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """photos/ with two source subfolders of 10 photos each, and its prep-dataset output."""
    root = tmp_path_factory.mktemp("copy-split")
    write_photos(root / "photos" / "objects", range(10))
    write_photos(root / "photos" / "scenes", range(10, 20))
    options = PrepOptions(photo=PhotoOptions(size=40, min_size=32), val_fraction=0.3, progress=False)
    prep_dataset([root / "photos"], root / "prepared", options)
    return root


def _split(prepared, split):
    rows = [json.loads(line) for line in (prepared / "manifest.jsonl").read_text().splitlines()]
    return {row["source"].removeprefix("photos/") for row in rows if row["split"] == split}


def _copied(out):
    return {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()}


def test_a_split_is_copied_byte_for_byte_under_its_source_paths(copy_split, prepared, tmp_path):
    originals = {path: path.read_bytes() for path in (prepared / "photos").rglob("*.jpg")}
    copy_split.main([str(prepared / "prepared"), str(tmp_path / "val"), "--split", "val"])
    val = _split(prepared / "prepared", "val")
    assert 0 < len(val) < 20
    assert _copied(tmp_path / "val") == val
    for name in val:
        assert (tmp_path / "val" / name).read_bytes() == (prepared / "photos" / name).read_bytes()
    assert {path: path.read_bytes() for path in originals} == originals  # the originals are only read


def test_excluded_folders_are_left_out(copy_split, prepared, tmp_path):
    copy_split.main([str(prepared / "prepared"), str(tmp_path / "out"), "--split", "train", "--exclude", "scenes"])
    train = _split(prepared / "prepared", "train")
    assert _copied(tmp_path / "out") == {name for name in train if name.startswith("objects/")}


def test_a_count_draws_the_same_photos_for_the_same_seed(copy_split, prepared, tmp_path):
    def draw(out, seed):
        copy_split.main([str(prepared / "prepared"), str(tmp_path / out), "--split", "train",
                         "--count", "5", "--seed", str(seed)])
        return _copied(tmp_path / out)

    first, again = draw("a", 0), draw("b", 0)
    assert first == again and len(first) == 5
    assert first <= _split(prepared / "prepared", "train")
    assert {frozenset(draw(f"seed-{seed}", seed)) for seed in range(1, 6)} != {frozenset(first)}


def test_more_photos_than_the_split_holds_is_refused(copy_split, prepared, tmp_path):
    with pytest.raises(SystemExit, match="asked for 999 photos"):
        copy_split.main([str(prepared / "prepared"), str(tmp_path / "out"), "--split", "train", "--count", "999"])
    assert not (tmp_path / "out").exists()


def test_a_folder_that_holds_files_is_not_written_into(copy_split, prepared, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.jpg").write_bytes(b"keep me")
    with pytest.raises(SystemExit, match="is not empty"):
        copy_split.main([str(prepared / "prepared"), str(tmp_path / "out"), "--split", "val"])
    assert _copied(tmp_path / "out") == {"mine.jpg"}
