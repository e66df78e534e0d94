"""Resident memory of one long `colorize` batch: does RSS stay flat over thousands of images of mixed sizes?

    .venv/bin/python bench/bench_memory.py [--images 2000] [--every 100] [--model cnn|PATH] [--workers 2]

Writes `--images` photos (gray and colour; JPEG, PNG and 16-bit TIFF; each side 32-256 px, so that a run
takes minutes) to a temporary folder, colorizes them in this process with run_batch, as the command does,
and prints RSS (VmRSS) every `--every` images. Without --model, a cnn with fixed random weights is used:
the batch plumbing is what is measured, not the colours.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch
from PIL import Image

from colorize_cli.colorize.batch import BatchOptions, run_batch
from colorize_cli.colorize.colorizer import Colorizer
from colorize_cli.models import build_model
from colorize_cli.models.checkpoint import save_checkpoint
from colorize_cli.photos.discovery import plan_jobs

MB = 1 << 20


def rss_mb():
    """Current resident set size of this process, in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (not Linux?)")


def mixed_photos(folder, count, min_side=32, max_side=256, seed=0):
    """`count` photos of random sizes, kinds and formats, 100 to a subfolder."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        height, width = (int(side) for side in rng.integers(min_side, max_side + 1, 2))
        grid = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
        pixels = np.asarray(Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC))
        path = folder / f"{i // 100:03d}" / f"{i:05d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        kind = i % 4
        if kind == 0:
            Image.fromarray(pixels).save(path.with_suffix(".jpg"), quality=90)
        elif kind == 1:
            Image.fromarray(pixels[..., 1]).save(path.with_suffix(".png"))
        elif kind == 2:
            tifffile.imwrite(path.with_suffix(".tif"), pixels[..., 0].astype(np.uint16) * 257)
        else:
            Image.fromarray(pixels).save(path.with_suffix(".png"))
    return folder


def measure(images=2000, every=100, model=None, workers=2, batch_size=1, max_side=256, log=print):
    """[(images done, RSS MiB)] sampled every `every` images of one batch over `images` mixed photos."""
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        started = time.perf_counter()
        photos = mixed_photos(scratch / "photos", images, max_side=max_side)
        log(f"wrote {images} photos in {time.perf_counter() - started:.1f} s")
        if model is None:
            torch.manual_seed(0)
            model = scratch / "cnn.safetensors"
            save_checkpoint(model, build_model("cnn"))
        colorizer = Colorizer.from_checkpoint(model, "cpu")
        jobs = plan_jobs([photos], scratch / "out")
        options = BatchOptions(workers=workers, batch_size=batch_size)
        samples = [(0, rss_mb())]
        started = time.perf_counter()
        log(f"{'images':>7} {'RSS MiB':>8} {'seconds':>8}")
        log(f"{0:>7} {samples[0][1]:>8.1f} {0:>8.1f}")
        for count, result in enumerate(run_batch(jobs, colorizer, options), 1):
            assert result.status == "done", result
            if count % every == 0 or count == len(jobs):
                samples.append((count, rss_mb()))
                log(f"{count:>7} {samples[-1][1]:>8.1f} {time.perf_counter() - started:>8.1f}")
    return samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--model", help="shipped model name or checkpoint path [default: a random cnn]")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args()
    samples = measure(args.images, args.every, args.model, args.workers, args.batch_size)
    # The first few hundred images warm the allocator and torch's caches; after that RSS should not move.
    late = [rss for count, rss in samples if count >= min(200, args.images)]
    print(f"RSS after 200 images {late[0]:.1f} MiB, at the end {samples[-1][1]:.1f} MiB, "
          f"range after warm-up {max(late) - min(late):.1f} MiB, peak {max(rss for _, rss in samples):.1f} MiB")


if __name__ == "__main__":
    main()
