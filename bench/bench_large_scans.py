"""Peak memory and time of `colorize` on large scans: a 24 MP JPEG and a 100 MP 16-bit TIFF.

Usage: python bench/bench_large_scans.py [--model NAME_OR_PATH] [--sizes 24,100]
Each size runs in a fresh process, so its peak RSS is its own; the interpreter and torch alone are
measured the same way and reported as the baseline.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SCANS = {
    24: ("scan_24mp.jpg", (4000, 6000), 8),
    100: ("scan_100mp.tif", (8192, 12208), 16),
}


def make_scan(path, shape, bits):
    """A smooth gray gradient with fine noise: realistic enough for codecs, cheap to generate."""
    from PIL import Image
    import tifffile

    rng = np.random.default_rng(0)
    small = rng.random((shape[0] // 64, shape[1] // 64)).astype(np.float32)
    base = np.asarray(Image.fromarray(small).resize((shape[1], shape[0]), Image.BILINEAR))
    if bits == 16:
        tifffile.imwrite(path, (base * 65535).astype(np.uint16))
    else:
        Image.fromarray((base * 255).astype(np.uint8)).save(path, quality=90)


def peak_rss_mb(code):
    """Run Python `code` in a fresh process; return (peak RSS in MB, seconds)."""
    script = f"import resource\n{code}\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    return float(result.stdout.split()[-1]), time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gan")
    parser.add_argument("--sizes", default="24,100")
    args = parser.parse_args()
    baseline, _ = peak_rss_mb("import colorize_cli.cli, torch; torch.ones(1)")
    print(f"baseline (interpreter + torch): {baseline:.0f} MB peak RSS")
    print("| scan | megapixels | seconds | peak RSS MB | above baseline, bytes/px |")
    print("|---|--:|--:|--:|--:|")
    with tempfile.TemporaryDirectory() as folder:
        for size in map(int, args.sizes.split(",")):
            name, shape, bits = SCANS[size]
            scans = Path(folder) / f"in{size}"
            scans.mkdir()
            make_scan(scans / name, shape, bits)
            out = Path(folder) / f"out{size}"
            code = (
                "from colorize_cli.cli import cli\n"
                f"try: cli([{str(scans)!r}, '-o', {str(out)!r}, '--model', {args.model!r}, '-q'])\n"
                "except SystemExit as e: assert e.code == 0, e.code"
            )
            peak, seconds = peak_rss_mb(code)
            pixels = shape[0] * shape[1]
            per_pixel = (peak - baseline) * 2**20 / pixels
            print(f"| {name} ({bits}-bit) | {pixels / 1e6:.0f} | {seconds:.1f} | {peak:.0f} | {per_pixel:.1f} |")


if __name__ == "__main__":
    main()
