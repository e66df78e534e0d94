"""Training data as a torch Dataset: a prep-dataset output folder (fast) or a plain folder of images.

Items are {"l": [1,S,S] normalised L, "ab": [2,S,S] ab / AB_SCALE, "label": int (-1: none)} cut from photos
stored as uint8 sRGB. Prepared shards are memory-mapped, so an item costs a crop copy and one small Lab
conversion; a plain folder decodes its JPEGs on every read.
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from colorize_cli.colour.lab import ab_to_unit, normalize_l, rgb_to_lab, weighted_lightness
from colorize_cli.prep.photo import PhotoError, PhotoOptions, decode_photo
from colorize_cli.prep.pipeline import FORMAT
from colorize_cli.prep.sources import SourceOptions, SourceTally, iter_items
from colorize_cli.prep.splits import content_hash, in_share, split_for
from colorize_cli.train.aged_print import age_print
from colorize_cli.train.old_film import emulsion_weights

SPLITS = ("train", "val")
SCAN_SIDE = 32  # decode size when checking a plain folder's files: JPEGs decode at 1/8 scale, fast
SCAN_THREADS = 4  # hashing and decoding release the GIL
STRIP_BAND = 4  # long side / short side kept of a photo that must be enlarged to hold the crop


class DatasetError(ValueError):
    """A dataset path that cannot be read; the message is one line naming it."""


def is_prepared(path):
    """True for a prep-dataset output folder (manifest.jsonl and stats.json)."""
    path = Path(path)
    return (path / "manifest.jsonl").is_file() and (path / "stats.json").is_file()


def read_stats(path):
    """A prep-dataset folder's stats.json, checked to be of this format."""
    try:
        stats = json.loads((Path(path) / "stats.json").read_text())
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path}: cannot read stats.json ({err})") from None
    if stats.get("format") != FORMAT:
        raise DatasetError(f"{path}: stats.json is not a {FORMAT} file")
    return stats


class _ShardStore:
    """Photos in prep-dataset shards, read through memory maps opened lazily in each worker process."""

    def __init__(self, folder, rows):
        self.folder = Path(folder)
        self.shards = sorted({row["shard"] for row in rows})
        shard_index = {name: i for i, name in enumerate(self.shards)}
        self.index = np.array(
            [(shard_index[row["shard"]], row["offset"], row["height"], row["width"]) for row in rows], np.int64
        ).reshape(-1, 4)
        self._maps = {}

    def __len__(self):
        return len(self.index)

    def __getstate__(self):
        # DataLoader workers (spawned) open their own maps instead of receiving pickled copies of the data.
        return {**self.__dict__, "_maps": {}}

    def pixels(self, i):
        shard, offset, height, width = (int(v) for v in self.index[i])
        data = self._maps.get(shard)
        if data is None:
            data = self._maps[shard] = np.memmap(self.folder / "shards" / f"{self.shards[shard]}.bin", np.uint8, "r")
        return data[offset : offset + height * width * 3].reshape(height, width, 3)


class _FolderStore:
    """Image files decoded on every read, resized as prep-dataset would."""

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def pixels(self, i):
        return decode_photo(Path(self.paths[i]).read_bytes(), PhotoOptions().size)


class PhotoCrops(Dataset):
    """Square crops of stored photos as model inputs; random crop and flip when `augment`, else centre crop.

    With `zoom_out` > 1 a random crop covers a square of up to that many times the crop's side (as far as
    the photo's short side allows), shrunk to the crop: the network then also learns from a whole photo's
    context at its working scale, as it colours whole photos, not only from close-ups of their middles.
    Random draws come from a generator seeded by `seed` and the process's torch seed, so they are
    reproducible under torch.manual_seed and differ between DataLoader workers.
    With `old_film` > 0 that share of random crops gets as input the lightness an old emulsion of
    random colour sensitivity would record (train/old_film.py); the target ab stays the photo's.
    With `aged_print` > 0 that share of random crops gets its input L blurred, faded and grained as an old
    print's would be (train/aged_print.py), after any old-film lightness; the target ab stays the photo's.
    """

    def __init__(self, store, labels, crop_size=128, augment=True, seed=0, skipped=0, zoom_out=1.0, folders=None,
                 old_film=0.0, unusable=(), aged_print=0.0):
        if zoom_out < 1:
            raise DatasetError(f"zoom_out must be at least 1 (1: crops at the stored scale), got {zoom_out}")
        for name, share in (("old_film", old_film), ("aged_print", aged_print)):
            if not 0 <= share <= 1:
                raise DatasetError(f"{name} must be a share in [0, 1], got {share}")
        self.old_film, self.aged_print = old_film, aged_print
        self.store, self.labels = store, labels
        # Each photo's top folder under its source ("caltech101"), for --balance-folders; "" at the top.
        self.folders = list(folders) if folders is not None else [""] * len(store)
        self.crop_size, self.augment, self.seed, self.zoom_out = crop_size, augment, seed, zoom_out
        self.skipped = skipped
        self.unusable = unusable  # (path, cause) of a plain folder's files that would not decode
        self._rng, self._rng_key = None, None

    def __len__(self):
        return len(self.store)

    def _generator(self):
        key = torch.initial_seed()
        if key != self._rng_key:
            self._rng = torch.Generator().manual_seed((self.seed * 1_000_003 + key) % 2**63)
            self._rng_key = key
        return self._rng

    def _crop(self, pixels):
        size = self.crop_size
        height, width = pixels.shape[:2]
        short = min(height, width)
        if short < size and max(height, width) > STRIP_BAND * short:
            # A thin strip is cut to its centre first: enlarged whole, 1 x 20,000 px would become 64 x 1.3 M.
            band = STRIP_BAND * short
            top, left = (height - min(height, band)) // 2, (width - min(width, band)) // 2
            pixels = pixels[top : top + band, left : left + band]
            height, width = pixels.shape[:2]
        if min(height, width) < size:  # a photo smaller than the crop is enlarged to fit it
            scale = size / min(height, width)
            shape = (max(size, round(width * scale)), max(size, round(height * scale)))
            pixels = np.asarray(Image.fromarray(np.asarray(pixels)).resize(shape, Image.Resampling.BICUBIC))
            height, width = pixels.shape[:2]
        flip, side = False, size
        if self.augment:
            rng = self._generator()
            if self.zoom_out > 1:
                zoom = 1 + float(torch.rand((), generator=rng)) * (self.zoom_out - 1)
                side = min(round(size * zoom), height, width)
            top = int(torch.randint(height - side + 1, (), generator=rng))
            left = int(torch.randint(width - side + 1, (), generator=rng))
            flip = bool(torch.rand((), generator=rng) < 0.5)
        else:
            top, left = (height - size) // 2, (width - size) // 2
        crop = pixels[top : top + side, left : left + side]
        if side != size:
            crop = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((size, size), Image.Resampling.BICUBIC))
        return np.array(crop[:, ::-1] if flip else crop)  # a writable copy, never a view of the shard

    def __getitem__(self, i):
        rgb = torch.from_numpy(self._crop(self.store.pixels(i))).permute(2, 0, 1).float() / 255
        lab = rgb_to_lab(rgb)
        lightness = lab[:1]
        # Drawn only when asked, so that runs without it keep their random sequence.
        if self.augment and self.old_film and torch.rand((), generator=self._generator()) < self.old_film:
            lightness = weighted_lightness(rgb, emulsion_weights(self._generator()))
        if self.augment and self.aged_print and torch.rand((), generator=self._generator()) < self.aged_print:
            lightness = age_print(lightness, self._generator())
        return {"l": normalize_l(lightness), "ab": ab_to_unit(lab[1:]), "label": int(self.labels[i])}


def _check_split(split):
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")


def prepared_rows(path, split):
    """The manifest rows of one split of a prep-dataset folder, in manifest order."""
    try:
        with open(Path(path) / "manifest.jsonl", encoding="utf-8") as stream:
            rows = [json.loads(line) for line in stream if line.strip()]
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path}: cannot read manifest.jsonl ({err})") from None
    return [row for row in rows if row["split"] == split]


def top_folder(relative) -> str:
    """The first folder of a path relative to its source ("caltech101" of "caltech101/x.jpg"); "" for a
    file at the source's top."""
    parts = PurePosixPath(str(relative).replace(os.sep, "/")).parts
    return parts[0] if len(parts) > 1 else ""


def _scan_file(path):
    """(content hash, None) for a usable file of a plain folder, (None, why not) for another."""
    try:
        data = Path(path).read_bytes()
        decode_photo(data, SCAN_SIDE)
    except OSError as err:
        return None, err.strerror or str(err)
    except PhotoError as err:
        return None, str(err)
    return content_hash(data), None


@lru_cache(maxsize=8)
def _scan_folder(files):
    """Split of every usable file as (path, content hash) pairs, and (path, cause) of each unusable one;
    cached on the (path, size, mtime) list."""
    with ThreadPoolExecutor(SCAN_THREADS) as pool:
        results = list(pool.map(_scan_file, [path for path, _, _ in files]))
    splits = {split: [] for split in SPLITS}
    unusable = []
    for (path, _, _), (digest, cause) in zip(files, results, strict=True):
        if cause is None:
            splits[split_for(digest)].append((path, digest))
        else:
            unusable.append((str(path), cause))
    return splits, tuple(unusable)


def _folder_scan(path):
    """(splits, count of skipped files, (path, cause) of the files that would not decode)."""
    tally = SourceTally()
    items = list(iter_items([path], SourceOptions(), tally))
    if not items:
        raise DatasetError(f"{path}: no images found (is it a prep-dataset output or a folder of photos?)")
    files = tuple((item.path, *_size_and_mtime(item.path)) for item in items)
    splits, unusable = _scan_folder(files)
    # Non-image files are not "skipped images"; links, special and oversize files are.
    others = sum(count for reason, count in tally.skipped.items() if reason != "not_an_image")
    return splits, len(unusable) + others, unusable


def _size_and_mtime(path):
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns


def _require_dir(path):
    if not Path(path).is_dir():
        raise DatasetError(f"{path}: no such folder")


def open_dataset(path, *, split="train", crop_size=128, augment=True, seed=0, zoom_out=1.0, old_film=0.0,
                 aged_print=0.0, share=1.0):
    """The `split` of a prep-dataset output folder or of a plain folder of images, as PhotoCrops.

    `share` < 1 keeps only that share of the split's photos, chosen by their content hash (prep/splits.py's
    `in_share`): the same photos from a prepared folder and from the folder it was made of.
    """
    _check_split(split)
    _require_dir(path)
    if not 0 < share <= 1:
        raise DatasetError(f"share must be in (0, 1], got {share}")
    if is_prepared(path):
        read_stats(path)
        rows = [row for row in prepared_rows(path, split) if in_share(row["hash"], share)]
        store, labels, skipped = _ShardStore(path, rows), np.array([row["label"] for row in rows], np.int64), 0
        unusable = ()  # prep-dataset vetted every photo
        # A manifest's source is "<source folder name>/<path inside it>".
        folders = [top_folder(row["source"].partition("/")[2]) for row in rows]
    else:
        splits, skipped, unusable = _folder_scan(path)
        files = [file for file, digest in splits[split] if in_share(digest, share)]
        store, labels = _FolderStore(files), np.full(len(files), -1, np.int64)
        folders = [top_folder(os.path.relpath(file, path)) for file in files]
    return PhotoCrops(store, labels, crop_size=crop_size, augment=augment, seed=seed, skipped=skipped,
                      zoom_out=zoom_out, folders=folders, old_film=old_film, unusable=unusable,
                      aged_print=aged_print)


def dataset_summary(path):
    """What the data is and how many images each split has (for model cards and checkpoint headers).

    Folders are named by their own names, never by the trainer's absolute paths: a card must read the
    same whoever trained it where.
    """
    _require_dir(path)
    if is_prepared(path):
        stats = read_stats(path)
        return {
            "kind": "prep-dataset",
            "path": data_name(path),
            "sources": [data_name(source) for source in stats["sources"]],
            "images": stats["images"],
            "num_labels": stats["num_labels"],
            "labels": stats["labels"],
            "skipped": stats["skipped"],
        }
    splits, skipped, _ = _folder_scan(path)
    return {
        "kind": "folder",
        "path": data_name(path),
        "sources": [data_name(path)],
        "images": {split: len(files) for split, files in splits.items()},
        "num_labels": 0,
        "labels": {},
        "skipped": {"unusable": skipped} if skipped else {},
    }


def data_name(path) -> str:
    """A data folder or source as a portable name: a relative path as given ('data/photos-train'), an
    absolute one by its own name ('photos-train'), never by where it lay on the trainer's machine."""
    path = Path(path)
    return path.name if path.is_absolute() else str(path)


def load_ab_prior(path):
    """The smoothed 313-bin ab prior from stats.json (float32 [313]); None for a plain folder."""
    if not is_prepared(path):
        return None
    prior = read_stats(path)["ab_prior"]
    return None if prior is None else torch.tensor(prior, dtype=torch.float32)


def num_labels(path):
    """Number of scene labels in a prepared dataset; 0 for none or a plain folder."""
    return read_stats(path)["num_labels"] if is_prepared(path) else 0
