"""The training-data reader over prep-dataset output and plain folders: items, determinism, splits, stats."""

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2lab
from torch.utils.data import DataLoader

from colorize_cli.colour.lab import AB_SCALE, normalize_l
from colorize_cli.prep.photo import PhotoOptions
from colorize_cli.prep.pipeline import PrepOptions, prep_dataset
from colorize_cli.prep.splits import in_share, split_for
from colorize_cli.train.datasets import (
    DatasetError,
    PhotoCrops,
    dataset_summary,
    load_ab_prior,
    num_labels,
    open_dataset,
)
from tests.prep_helpers import write_photos

CROP = 32


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder of 16 photos (one of them corrupt), and its prep-dataset output."""
    root = tmp_path_factory.mktemp("reader")
    write_photos(root / "photos", range(15), size=(48, 64))
    (root / "photos" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (root / "photos" / "notes.txt").write_text("not an image")
    options = PrepOptions(photo=PhotoOptions(size=40, min_size=32), val_fraction=0.25, progress=False)
    prep_dataset([root / "photos"], root / "prepared", options)
    return root


def _rows(prepared):
    return [json.loads(line) for line in (prepared / "manifest.jsonl").read_text().splitlines()]


def test_items_are_normalised_l_and_unit_ab_of_the_stored_crop(photos):
    dataset = open_dataset(photos / "prepared", split="train", crop_size=CROP, augment=False)
    rows = [row for row in _rows(photos / "prepared") if row["split"] == "train"]
    assert len(dataset) == len(rows) > 0
    item = dataset[0]
    assert item["l"].shape == (1, CROP, CROP) and item["ab"].shape == (2, CROP, CROP) and item["label"] == -1
    assert item["l"].dtype == item["ab"].dtype == torch.float32
    assert -1 <= item["l"].min() and item["l"].max() <= 1 and item["ab"].abs().max() <= 1
    # Centre crop of the stored 40x53 photo, checked against skimage's Lab.
    stored = np.fromfile(photos / "prepared" / "shards" / f"{rows[0]['shard']}.bin", np.uint8)
    height, width = rows[0]["height"], rows[0]["width"]
    pixels = stored[rows[0]["offset"] : rows[0]["offset"] + height * width * 3].reshape(height, width, 3)
    top, left = (height - CROP) // 2, (width - CROP) // 2
    lab = rgb2lab(pixels[top : top + CROP, left : left + CROP])
    assert np.allclose(item["l"][0].numpy(), (lab[..., 0] - 50) / 50, atol=1e-3)
    assert np.allclose(item["ab"].permute(1, 2, 0).numpy(), lab[..., 1:] / AB_SCALE, atol=1e-3)


def test_augmentation_is_reproducible_and_seeded(photos):
    def epochs(seed, count=1):
        torch.manual_seed(7)
        dataset = open_dataset(photos / "prepared", crop_size=CROP, augment=True, seed=seed)
        return [torch.stack([dataset[i]["ab"] for i in range(len(dataset))]) for _ in range(count)]

    first, second = epochs(0, count=2)
    assert torch.equal(first, epochs(0)[0])  # same seeds, same crops and flips
    assert not torch.equal(first, second)  # the next epoch draws new ones
    assert not torch.equal(first, epochs(1)[0])


def test_a_batch_through_a_dataloader(photos):
    loader = DataLoader(open_dataset(photos / "prepared", crop_size=CROP), batch_size=4, num_workers=0)
    batch = next(iter(loader))
    assert batch["l"].shape == (4, 1, CROP, CROP) and batch["label"].tolist() == [-1] * 4


def test_pickling_for_worker_processes_does_not_copy_the_pixels(photos):
    dataset = open_dataset(photos / "prepared", crop_size=CROP)
    dataset[0]  # opens a memory map
    assert len(pickle.dumps(dataset)) < 20_000
    copy = pickle.loads(pickle.dumps(dataset))
    assert torch.equal(copy[1]["ab"], dataset[1]["ab"])  # same data, same random state


def test_photos_smaller_than_the_crop_are_enlarged(photos):
    item = open_dataset(photos / "prepared", crop_size=64, augment=True)[0]
    assert item["l"].shape == (1, 64, 64)


class _RampStore:
    """One 64x64 gray photo whose code rises by 4 per column, so a crop's lightness span tells its width."""

    def __len__(self):
        return 1

    def pixels(self, i):
        ramp = np.repeat((np.arange(64, dtype=np.uint8) * 4)[None, :, None], 64, axis=0)
        return np.repeat(ramp, 3, axis=2)


def _lightness_spans(zoom_out, draws=40, augment=True):
    torch.manual_seed(3)
    dataset = PhotoCrops(_RampStore(), np.array([-1]), crop_size=16, augment=augment, zoom_out=zoom_out)
    items = [dataset[0]["l"] for _ in range(draws)]
    assert all(item.shape == (1, 16, 16) for item in items)
    return [float(item.max() - item.min()) for item in items]


def test_zoom_out_crops_cover_wider_squares_shrunk_to_the_crop():
    # 16 of the 64 columns span at most 60 codes: L 0 to 28 at the dark end (0.55 normalised); the row 0-99.
    assert max(_lightness_spans(1.0)) < 0.6
    zoomed = _lightness_spans(4.0)
    assert max(zoomed) > 1.5 and min(zoomed) > 0.2  # some crops see (nearly) the whole photo
    assert len(set(round(span, 3) for span in zoomed)) > 20  # a fresh zoom per draw
    assert max(_lightness_spans(4.0, augment=False)) < 0.6  # validation's centre crops stay at scale
    with pytest.raises(DatasetError, match="zoom_out must be at least 1"):
        PhotoCrops(_RampStore(), np.array([-1]), crop_size=16, zoom_out=0.5)


class _StripStore:
    """One 1 x 20,000 px strip whose code rises along it: enlarged whole for a 64 px crop it would be 1.3 M px wide."""

    def __len__(self):
        return 1

    def pixels(self, i):
        ramp = (np.arange(20_000) * 255 // 19_999).astype(np.uint8)
        return np.repeat(ramp[None, :, None], 3, axis=2)


def test_a_thin_strip_is_cut_to_its_centre_before_it_is_enlarged(monkeypatch):
    enlarged = []
    real_resize = Image.Image.resize
    monkeypatch.setattr(Image.Image, "resize", lambda im, size, *a, **k: enlarged.append(size) or real_resize(im, size, *a, **k))
    dataset = PhotoCrops(_StripStore(), np.array([-1]), crop_size=64, augment=True)

    item = dataset[0]

    assert item["l"].shape == (1, 64, 64)
    assert max(width * height for width, height in enlarged) <= 4 * 64 * 64
    centre = dataset.store.pixels(0)[:, 9_998:10_002] / 255  # the crop comes from the strip's centre
    expected = normalize_l(torch.from_numpy(rgb2lab(centre)[..., 0]).float())
    assert abs(float(item["l"].mean()) - float(expected.mean())) < 0.01


def test_plain_folder_uses_the_same_split_and_counts_corrupt_files(photos):
    by_split = {split: open_dataset(photos / "photos", split=split, crop_size=CROP) for split in ("train", "val")}
    assert by_split["train"].skipped == 1  # corrupt.jpg; the text file is no image at all
    # The prepared set used another --val-fraction; the rule is the same at the default fraction.
    rows = _rows(photos / "prepared")
    for split, dataset in by_split.items():
        assert sorted(dataset.store.paths) == sorted(
            str(photos / "photos" / row["source"].split("/", 1)[1]) for row in rows if split_for(row["hash"]) == split
        )
    item = by_split["train"][0]
    assert item["l"].shape == (1, CROP, CROP) and item["label"] == -1


def test_summary_prior_and_labels(photos):
    prepared = dataset_summary(photos / "prepared")
    # Named by what they are, not by the absolute paths they had on this machine.
    assert prepared["kind"] == "prep-dataset" and prepared["sources"] == ["photos"] and prepared["path"] == "prepared"
    assert sum(prepared["images"].values()) == 15 and prepared["skipped"] == {"unreadable": 1, "not_an_image": 1}
    folder = dataset_summary(photos / "photos")
    splits = [split_for(row["hash"]) for row in _rows(photos / "prepared")]
    assert folder["images"] == {"train": splits.count("train"), "val": splits.count("val")}
    assert folder["skipped"] == {"unusable": 1}
    prior = load_ab_prior(photos / "prepared")
    assert prior.shape == (313,) and abs(float(prior.sum()) - 1) < 1e-5
    assert load_ab_prior(photos / "photos") is None
    assert num_labels(photos / "prepared") == num_labels(photos / "photos") == 0


def test_bad_paths_and_splits_are_one_line_errors(tmp_path, photos):
    with pytest.raises(DatasetError, match="no such folder"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        open_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="unknown split"):
        open_dataset(photos / "prepared", split="test")


def test_each_item_knows_its_top_folder_in_a_prepared_dataset_and_a_plain_folder(tmp_path):
    write_photos(tmp_path / "photos" / "city" / "night", range(4))
    write_photos(tmp_path / "photos" / "forest", range(4, 8))
    write_photos(tmp_path / "photos", range(8, 10))  # at the top: no folder
    prep_dataset([tmp_path / "photos"], tmp_path / "prepared", PrepOptions(photo=PhotoOptions(size=40, min_size=32), progress=False))
    for path in (tmp_path / "prepared", tmp_path / "photos"):
        folders = sorted(open_dataset(path, split="train").folders + open_dataset(path, split="val").folders)
        assert folders == ["", "", "city", "city", "city", "city", "forest", "forest", "forest", "forest"], path


def test_a_share_keeps_nested_subsets_of_a_split_chosen_by_content(tmp_path):
    write_photos(tmp_path / "photos", range(80), size=(40, 48))
    prep_dataset([tmp_path / "photos"], tmp_path / "prepared", PrepOptions(photo=PhotoOptions(size=40, min_size=32), progress=False))
    rows = [row for row in _rows(tmp_path / "prepared") if row["split"] == "train"]
    kept = {}
    for share in (1.0, 0.5, 0.25):
        prepared = open_dataset(tmp_path / "prepared", split="train", crop_size=CROP, share=share)
        plain = open_dataset(tmp_path / "photos", split="train", crop_size=CROP, share=share)
        # The same photos whichever form the data has: the rule reads the content hash only.
        names = sorted(row["source"].split("/", 1)[1] for row in rows if in_share(row["hash"], share))
        assert sorted(p.rsplit("/", 1)[1] for p in plain.store.paths) == names
        assert len(prepared) == len(names)
        kept[share] = set(names)
    assert len(kept[1.0]) == len(rows)
    assert kept[0.25] < kept[0.5] < kept[1.0]  # nested, so runs at growing shares form a learning curve
    assert 0.3 * len(rows) < len(kept[0.5]) < 0.7 * len(rows)
    with pytest.raises(DatasetError, match="share must be in"):
        open_dataset(tmp_path / "prepared", share=0.0)


def test_the_share_rule_is_independent_of_the_split_rule():
    digests = [f"{i * 2654435761 % 2**32:08x}{j * 2246822519 % 2**32:08x}" + "0" * 48 for i in range(40) for j in range(40)]
    val = [d for d in digests if split_for(d, 0.5) == "val"]
    # Half of the val photos and half of the train photos are in a 0.5 share: neither rule picks for the other.
    assert sum(in_share(d, 0.5) for d in val) == pytest.approx(len(val) / 2, rel=0.1)
    assert sum(in_share(d, 0.5) for d in digests) == pytest.approx(len(digests) / 2, rel=0.1)
    assert all(in_share(d, 1.0) for d in digests)
