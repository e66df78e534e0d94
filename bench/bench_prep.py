"""Images per second of prep-dataset on a folder of JPEGs, and of the training reader on its output.

    .venv/bin/python bench/bench_prep.py [PHOTOS] [--workers 2] [--limit 2000]

Without PHOTOS, 400 synthetic 640x480 JPEGs are written to a temporary folder. The reader is timed on
128-px augmented crops, from the prepared shards and from the plain folder, in one process.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from colorize_cli.prep.pipeline import PrepOptions, prep_dataset
from colorize_cli.train.datasets import open_dataset

CROP = 128
READS = 1000


def synthetic_photos(folder, count=400):
    """Smooth colourful 640x480 JPEGs with some texture, like photos for the decoder."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        grid = Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8)).resize((640, 480), Image.BICUBIC)
        noise = rng.normal(0, 8, (480, 640, 3))
        pixels = (np.asarray(grid, float) + noise).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:04d}.jpg", quality=90)
    return folder


def reader_rate(path):
    torch.set_num_threads(1)  # a DataLoader worker's setting: the rate per core
    dataset = open_dataset(path, split="train", crop_size=CROP, augment=True)
    started = time.perf_counter()
    for i in range(READS):
        dataset[i % len(dataset)]
    return READS / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="?", type=Path)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        photos = args.photos or synthetic_photos(Path(scratch) / "photos")
        out = Path(scratch) / "prepared"
        options = PrepOptions(workers=args.workers, limit=args.limit, progress=False)
        report = prep_dataset([photos], out, options)
        print(f"prep-dataset, {args.workers} worker(s): {report.candidates} JPEGs in {report.seconds:.1f} s = "
              f"{report.candidates / report.seconds:.0f} images/s (startup included)")
        again = prep_dataset([photos], out, options)
        print(f"rerun with every shard finished: {again.seconds:.1f} s")
        print(f"reader, {CROP}-px crops, one core: prepared shards {reader_rate(out):.0f} items/s, "
              f"plain folder {reader_rate(photos):.0f} items/s")


if __name__ == "__main__":
    main()
