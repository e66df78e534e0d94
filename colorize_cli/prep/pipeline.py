"""prep-dataset: image sources to a filtered training set of raw-pixel shards, a manifest and ab statistics.

Output folder layout:
  shards/NNNNN.bin   the kept photos of one chunk of candidates: uint8 RGB pixels back to back (H*W*3 each)
  shards/NNNNN.json  the chunk's record (rows, skip counts, failures, ab histogram); written last, so it marks
                     the shard finished and a rerun over the same candidates with the same settings skips it
  manifest.jsonl     one row per kept photo: source, hash, bytes, width, height, label, split, shard, offset
  stats.json         images per split, skips per reason, the files that failed, labels, the ab histogram and
                     its smoothed prior
  downloads/         files fetched for Unsplash TSV sources (kept, so a rerun does not fetch them again)

Raw pixels rather than JPEG bytes: the reader memory-maps a shard and copies a crop, with no decoding;
training on two cores is then limited by the network, not by JPEG decoding (see bench/).
"""

import hashlib
import json
import multiprocessing
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from colorize_cli.colour.ab_bins import NUM_BINS, smoothed_prior
from colorize_cli.photos.discovery import InputError, check_output_dir
from colorize_cli.photos.fsutil import atomic_write
from colorize_cli.prep.download import DownloadOptions
from colorize_cli.prep.failures import Failures, failure_line, is_failure
from colorize_cli.prep.perceptual_hash import NearDuplicateIndex
from colorize_cli.prep.photo import PhotoError, PhotoOptions, prepare_photo
from colorize_cli.prep.sources import (
    SourceOptions,
    SourceTally,
    iter_items,
    read_label_list,
    source_kind,
)
from colorize_cli.prep.splits import DEFAULT_VAL_FRACTION, content_hash, split_for

FORMAT = "colorize-prep-dataset/1"
SHARD_FORMAT = "raw-rgb8"
SHARD_NAME = re.compile(r"\d{5}\.(bin|json)")
CHUNK_BYTES = 256 << 20  # archive bytes held in memory per chunk, at most (plus one member)


class PrepError(ValueError):
    """prep-dataset cannot go on; the message is one line."""


@dataclass(frozen=True)
class PrepOptions:
    """Everything prep-dataset does besides the sources and the output folder."""

    photo: PhotoOptions = PhotoOptions()
    val_fraction: float = DEFAULT_VAL_FRACTION
    dedupe_distance: int = 6  # of 128 dHash bits; -1 keeps near-duplicates (exact duplicates always go)
    workers: int = 1
    limit: int | None = None  # candidates read from the sources, downloads included
    shard_images: int = 1000
    max_file_bytes: int = 64 << 20
    labels: Path | None = None
    images_root: Path | None = None
    download: DownloadOptions = DownloadOptions()
    progress: bool = True

    def settings(self):
        """What decides a shard's content: a finished shard is reused only when these match."""
        return {"photo": asdict(self.photo), "val_fraction": self.val_fraction, "dedupe": self.dedupe_distance}


@dataclass
class PrepReport:
    """What a run produced and skipped."""

    out: Path
    images: Counter = field(default_factory=Counter)  # split -> photos kept
    skipped: Counter = field(default_factory=Counter)  # reason -> candidates or members dropped
    failures: Failures = field(default_factory=Failures)  # the skipped files that could not be read, named
    downloads: Counter = field(default_factory=Counter)
    candidates: int = 0
    shards_written: int = 0
    shards_reused: int = 0
    seconds: float = 0.0


@dataclass
class _Outcome:
    digest: str | None
    nbytes: int
    reason: str | None = None
    detail: str = ""
    photo: object = None


def _process(item, options):
    """Worker: read, hash and prepare one candidate (runs in a worker process)."""
    try:
        data = item.read()
    except OSError as err:
        return _Outcome(None, 0, "unreadable", err.strerror or str(err))
    digest = content_hash(data)
    try:
        return _Outcome(digest, len(data), photo=prepare_photo(data, digest, options))
    except PhotoError as err:
        return _Outcome(digest, len(data), err.reason, err.detail)


def _init_worker():
    torch.set_num_threads(1)  # one process per core; torch's own threads would only fight over them


class _Workers:
    """An ordered, lazy map over worker processes, started on first use (reusing every shard starts none)."""

    def __init__(self, count):
        self.count, self._pool = count, None

    def imap(self, func, items):
        if self.count <= 1:
            return map(func, items)
        if self._pool is None:
            # spawn, not fork: forking a process that has used torch's thread pool can deadlock the children.
            self._pool = multiprocessing.get_context("spawn").Pool(self.count, initializer=_init_worker)
        return self._pool.imap(func, items, chunksize=8)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._pool is not None:
            self._pool.terminate()


def _chunks(items, size):
    """Consecutive lists of `size` candidates (fewer when archive bytes held in memory reach CHUNK_BYTES)."""
    chunk, held = [], 0
    for item in items:
        chunk.append(item)
        held += len(item.data or b"")
        if len(chunk) == size or held >= CHUNK_BYTES:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


def _names_digest(chunk):
    names = "\n".join(f"{item.name}\t{item.label}" for item in chunk)
    return hashlib.sha256(names.encode("utf-8", "surrogateescape")).hexdigest()  # file names need not be UTF-8


class _Kept:
    """Photos kept so far: exact and near-duplicate lookups across all shards."""

    def __init__(self, dedupe_distance):
        self.hashes = set()
        self.near = NearDuplicateIndex(dedupe_distance) if dedupe_distance >= 0 else None

    def reason_to_drop(self, digest, dhash):
        """'duplicate' or 'near_duplicate', or None after recording the photo as kept."""
        if digest in self.hashes:
            return "duplicate"
        if self.near is not None and self.near.add(dhash):
            return "near_duplicate"
        self.hashes.add(digest)
        return None

    def add_rows(self, rows):
        for row in rows:
            self.reason_to_drop(row["hash"], int(row["dhash"], 16))


def _record_path(out, index):
    return out / "shards" / f"{index:05d}.json"


def _reusable_record(out, index, names, settings):
    path, shard = _record_path(out, index), out / "shards" / f"{index:05d}.bin"
    if not (path.exists() and shard.exists()):
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("names") != names or record.get("settings") != settings or "failed" not in record:
        return None  # other candidates or settings, or a record from before failures were named
    return record


def _build_shard(out, index, chunk, outcomes, kept, options, on_item):
    """Write the kept photos of one chunk to shards/NNNNN.bin, then its record; return the record."""
    shard = f"{index:05d}"
    rows, rejected, failed, ab_counts, offset = [], Counter(), [], np.zeros(NUM_BINS, np.int64), 0
    with atomic_write(out / "shards" / f"{shard}.bin") as tmp, open(tmp, "wb") as stream:
        for item, outcome in zip(chunk, outcomes, strict=True):
            on_item()
            photo = outcome.photo
            reason = outcome.reason or kept.reason_to_drop(outcome.digest, photo.dhash)
            if reason:
                rejected[reason] += 1
                if is_failure(reason):
                    failed.append(failure_line(item.name, reason, outcome.detail))
                continue
            split = split_for(outcome.digest, options.val_fraction)
            height, width = photo.pixels.shape[:2]
            rows.append(
                {
                    "source": item.name,
                    "hash": outcome.digest,
                    "bytes": outcome.nbytes,
                    "width": width,
                    "height": height,
                    "label": item.label,
                    "split": split,
                    "shard": shard,
                    "offset": offset,
                    "dhash": f"{photo.dhash:032x}",
                }
            )
            stream.write(photo.pixels.tobytes())
            offset += photo.pixels.nbytes
            if split == "train":  # the prior describes what the model is trained on
                ab_counts += photo.ab_counts
    record = {
        "names": _names_digest(chunk),
        "settings": options.settings(),
        "candidates": len(chunk),
        "rejected": dict(rejected),
        "failed": failed,
        "ab_counts": ab_counts.tolist(),
        "rows": rows,
    }
    _write_json(_record_path(out, index), record)
    return record


def _write_json(path, value, indent=None):
    with atomic_write(path) as tmp:
        Path(tmp).write_text(json.dumps(value, indent=indent) + "\n")


def _remove_stale_shards(out, count):
    """Shards numbered past this run's last one belong to an earlier, larger run over other candidates."""
    for path in (out / "shards").iterdir():
        if SHARD_NAME.fullmatch(path.name) and int(path.name[:5]) >= count:
            path.unlink()


def prep_dataset(sources, out, options=PrepOptions()):
    """Build a training set in `out` from folders, archives, Places lists and Unsplash TSVs; a PrepReport."""
    started = time.perf_counter()
    out = Path(out)
    if not sources:
        raise PrepError("give at least one source: a folder, .tar[.gz], .zip, Places list or photos.tsv")
    kinds = [source_kind(source) for source in sources]  # a missing or unknown source stops the run here
    # Shards written into a source folder would be read as its photos next time, and skipping them drops
    # whatever else is there: refuse it, as `colorize` does (an output folder above a source is fine).
    try:
        check_output_dir(out, [source for source, kind in zip(sources, kinds, strict=True) if kind == "folder"], [])
    except InputError as err:
        raise PrepError(str(err)) from None
    labels = read_label_list(options.labels) if options.labels else None
    (out / "shards").mkdir(parents=True, exist_ok=True)
    source_options = SourceOptions(
        max_file_bytes=options.max_file_bytes,
        labels=labels,
        images_root=options.images_root,
        download_dir=out / "downloads",
        download=options.download,
        # Landscape photos up to the aspect limit still get a short side of at least --size.
        request_width=round(options.photo.size * options.photo.max_aspect),
    )
    tally = SourceTally()
    report = PrepReport(out, failures=tally.failures)  # one list, so that failures are named in the order met
    if labels:
        tally.add_labels(labels)
    kept, settings = _Kept(options.dedupe_distance), options.settings()
    rows, ab_counts, count = [], np.zeros(NUM_BINS, np.int64), 0
    items = iter_items(sources, source_options, tally, options.limit)
    bar = tqdm(total=options.limit, desc="preparing", unit="img", disable=None if options.progress else True)
    with bar, _Workers(options.workers) as workers:
        for index, chunk in enumerate(_chunks(items, options.shard_images)):
            record = _reusable_record(out, index, _names_digest(chunk), settings)
            if record is None:
                outcomes = workers.imap(partial(_process, options=options.photo), chunk)
                record = _build_shard(out, index, chunk, outcomes, kept, options, lambda: bar.update())
                report.shards_written += 1
            else:
                kept.add_rows(record["rows"])
                bar.update(len(chunk))
                report.shards_reused += 1
            rows += record["rows"]
            report.skipped.update(record["rejected"])
            for line in record["failed"]:
                report.failures.add(line)
            ab_counts += np.asarray(record["ab_counts"], np.int64)
            report.candidates += record["candidates"]
            count = index + 1
    _remove_stale_shards(out, count)
    report.skipped.update(tally.skipped)
    report.downloads = tally.downloads
    report.images = Counter(row["split"] for row in rows)
    with atomic_write(out / "manifest.jsonl") as tmp:
        Path(tmp).write_text("".join(json.dumps(row) + "\n" for row in rows))
    _write_json(out / "stats.json", _stats(sources, options, report, tally.label_names, ab_counts), indent=1)
    report.seconds = time.perf_counter() - started
    return report


def _stats(sources, options, report, label_names, ab_counts):
    prior = smoothed_prior(torch.from_numpy(ab_counts).double()).tolist() if ab_counts.sum() else None
    return {
        "format": FORMAT,
        "shard_format": SHARD_FORMAT,
        "sources": [str(source) for source in sources],
        "settings": options.settings(),
        "images": {"train": report.images["train"], "val": report.images["val"]},
        "candidates": report.candidates,
        "skipped": dict(sorted(report.skipped.items())),
        "failed": report.failures.count,
        "failures": report.failures.named,  # the first of them, as printed
        "num_labels": max(label_names, default=-1) + 1,
        "labels": {str(index): name for index, name in sorted(label_names.items())},
        "ab_counts": ab_counts.tolist(),
        "ab_prior": prior,
    }
