"""Speed of `colorize` beside the I/O floor and the peers' networks, measured in one run -> bench/RESULTS.md.

Usage: python bench/bench_speed.py [--model gan] [--device cpu] [--out bench/RESULTS.md] [--quick]
(`make bench` runs it). Three parts, all in this one run so that their ratios are fair on a noisy machine:
  1. End to end: the batch job (`run_batch`, what the CLI runs) on folders of generated gray JPEGs at
     0.3, 3, 12 and 24 MP and on a 100 MP 16-bit TIFF, each folder in a fresh process (its own peak RSS),
     with the time split between read (decode + L), network, upsampling + colour (one fused pass) and write.
  2. The I/O floor: decode each input and write colorize's output pixels again through the same writer
     and thread count, and nothing else; in a fresh process as colorize runs, the faster of two runs.
  3. Networks at the same working size, random-initialised where weights are not shipped (speed does not
     depend on them): each model of ours and the peers (bench/peers.py), at batch 1 and 8.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # the package and bench/peers.py

# Before numpy, as in the `colorize` process: the floor runs under the same memory settings (huge pages).
import colorize_cli  # noqa: E402,F401
import numpy as np  # noqa: E402

# (label, (height, width), files, bits). Each of the WORKERS threads gets at least 6 JPEGs, so that the
# figures are a batch's throughput: in a fresh process the first image of each worker costs 1.5-3x in
# every stage here, decoder and encoder included (first touch of the process's memory on this VM; from 4
# to 12 files of 12 MP the ratio fell from 2.7x to 1.8x), which 2 images per worker could not amortise.
SETS = [
    ("0.3 MP JPEG", (480, 640), 24, 8),
    ("3 MP JPEG", (1500, 2000), 24, 8),
    ("12 MP JPEG", (3000, 4000), 12, 8),
    ("24 MP JPEG", (4000, 6000), 12, 8),
    ("100 MP 16-bit TIFF", (8192, 12208), 1, 16),
]
QUICK_SETS = [("0.3 MP JPEG", (480, 640), 4, 8), ("10 MP JPEG", (2736, 3648), 2, 8), ("16-bit TIFF", (600, 800), 1, 16)]
WORKING_SIZE = (256, 256)
WORKERS = 2

# Runs in a fresh process: the same pipeline as the CLI (plan_jobs, Colorizer, run_batch), timed after loading.
DRIVER = """
import json, sys, time
import colorize_cli  # first, as the `colorize` command imports it: its settings precede numpy's import
import torch
from colorize_cli.colorize.batch import BatchOptions, run_batch
from colorize_cli.photos.discovery import plan_jobs
from colorize_cli.colorize.colorizer import Colorizer
source, out, model, device, workers = sys.argv[1:6]
colorizer = Colorizer.from_checkpoint(model, device)
jobs = plan_jobs([source], out)
start = time.perf_counter()
results = list(run_batch(jobs, colorizer, BatchOptions(overwrite=True, workers=int(workers))))
if device.startswith("cuda"):
    torch.cuda.synchronize()
seconds = time.perf_counter() - start
failed = [r.error for r in results if r.status != "done"]
stages = {}
for result in results:
    for stage, value in result.timings.items():
        stages[stage] = stages.get(stage, 0.0) + value
# VmHWM: ru_maxrss would count the parent's memory at fork time
rss = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "stages": stages, "peak_rss": rss, "failed": failed}))
"""
# The pretrained default network may be slower than the seeds' but must stay well ahead of its peers
# (issue 14); the end-to-end ratios are issue 16's (12 MP and 3 MP JPEG against the I/O floor).
NETWORK_TARGET = 2.0
FLOOR_TARGETS = {"12 MP": 2.0, "3 MP": 2.5}


def make_photo(shape, bits, seed):
    """A gray photo-like image: skimage photos tiled and resized, plus film grain (so codecs work as on scans)."""
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(seed)
    tiles = [data.camera(), (data.astronaut() @ [0.299, 0.587, 0.114]).astype(np.uint8), data.coffee()[..., 1]]
    tile = Image.fromarray(tiles[seed % len(tiles)]).resize((shape[1], shape[0]), Image.BICUBIC)
    grain = rng.normal(0, 4.0, shape).astype(np.float32)
    pixels = np.clip(np.asarray(tile, np.float32) + grain, 0, 255)
    return (pixels * 257).astype(np.uint16) if bits == 16 else pixels.astype(np.uint8)


def make_inputs(root, sets):
    """One folder per set of generated photos; returns [(label, folder, files, megapixels per file)]."""
    import tifffile
    from PIL import Image

    folders = []
    for index, (label, shape, count, bits) in enumerate(sets):
        folder = root / f"set{index}"
        folder.mkdir()
        for n in range(count):
            pixels = make_photo(shape, bits, n)
            if bits == 16:
                tifffile.imwrite(folder / f"scan{n}.tif", pixels)
            else:
                Image.fromarray(pixels).save(folder / f"photo{n}.jpg", quality=90)
        folders.append((label, folder, sorted(folder.iterdir()), shape[0] * shape[1] / 1e6))
    return folders


# The floor runs in a fresh process too, as colorize does: a fresh process's first images cost more in
# every stage (the encoder's first JPEG here: 55 against 21 ms at 3 MP), which a floor timed inside this
# already warm process would not pay.
FLOOR_DRIVER = """
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import colorize_cli  # first, as in the colorize process: the same memory settings
import numpy as np, tifffile
from PIL import Image
from colorize_cli.photos.io import write_image
files, outputs, scratch, workers = json.loads(sys.argv[1]), json.loads(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
scratch.mkdir(exist_ok=True)
decoded = [tifffile.imread(path) if path.endswith(".tif") else np.asarray(Image.open(path)) for path in outputs]

def one(source, pixels):
    source = Path(source)
    if source.suffix == ".tif":
        tifffile.imread(source)
    else:
        with Image.open(source) as im:
            im.load()
    write_image(scratch / source.name, pixels, quality=95)

start = time.perf_counter()
with ThreadPoolExecutor(workers) as pool:
    list(pool.map(one, files, decoded))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def io_floor(files, outputs, scratch, workers=WORKERS):
    """Seconds to decode every input and write its colorized output again, in `workers` threads, in a
    fresh process (FLOOR_DRIVER).

    Writing goes through colorize's own write_image (same codec settings, atomic and synced); the outputs
    are decoded beforehand (untimed) so that the encoder gets the pixels colorize wrote: a gray image
    re-encoded as RGB would have empty chroma planes and make the floor unfairly cheap.
    """
    os.sync()  # no run pays for the last one's writes still going to disk (a 100 MP TIFF's are 600 MB)
    command = [sys.executable, "-c", FLOOR_DRIVER, json.dumps([str(f) for f in files]),
               json.dumps([str(f) for f in outputs]), str(scratch), str(workers)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent, check=False)
    if result.returncode != 0:
        raise SystemExit(f"the I/O floor failed:\n{result.stderr}")
    return json.loads(result.stdout.splitlines()[-1])["seconds"]


def colorize_end_to_end(folder, out, model, device):
    """The batch job on one folder in a fresh process: its timings and peak RSS."""
    os.sync()  # as before each floor: the disk holds no earlier run's writes
    command = [sys.executable, "-c", DRIVER, str(folder), str(out), model, device, str(WORKERS)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
    if result.returncode != 0:
        raise SystemExit(f"colorize run failed on {folder}:\n{result.stderr}")
    report = json.loads(result.stdout.splitlines()[-1])
    if report["failed"]:
        raise SystemExit(f"colorize failed on some files: {report['failed']}")
    return report


def stage_profile(path, model, device, scratch, repeats=3):
    """Milliseconds of each stage on one image, one thread (as each batch worker runs), best of `repeats`."""
    import torch

    from colorize_cli.colorize.colorizer import Colorizer
    from colorize_cli.colour.render import fold_coefficients, render
    from colorize_cli.colour.shrink_kernel import shrink_lightness
    from colorize_cli.colour.upsample import guided_coefficients
    from colorize_cli.photos.io import read_lightness, write_image

    colorizer = Colorizer.from_checkpoint(model, device)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        def best(stage):
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                result = stage()
                times.append(time.perf_counter() - start)
            return 1000 * min(times), result

        # A gray JPEG's read is its decode: libjpeg-turbo straight to the codes, with no L pass after it
        decode, (lightness, _) = best(lambda: read_lightness(path))
        size = colorizer.working_size(*lightness.shape)
        shrink, small = best(lambda: shrink_lightness(lightness.samples, size, lightness.lightness_of_code))
        network, low = best(lambda: colorizer.predict_low(torch.from_numpy(small)[None, None]))
        fit, folded = best(lambda: fold_coefficients(*guided_coefficients(low.guide, low.ab), 1.0))
        colour, rgb = best(lambda: render(lightness.samples, folded, 8, colorizer.device,
                                          lightness.lightness_of_code))
        encode, _ = best(lambda: write_image(scratch / "profile.jpg", rgb, quality=95))
    finally:
        torch.set_num_threads(before)
    # A gray photo's codes go to the shrink and the render as they are: no full-size float L is built.
    return {"decode (to codes)": decode, "codes -> working-size L": shrink,
            "network": network, "guided fit": fit, "upsample + L + Lab->sRGB (fused)": colour,
            "encode + write": encode}


def network_speed(module, batch, device, precision="auto", min_seconds=1.0):
    """Images per second of the module's inference call at WORKING_SIZE and `batch`.

    Every network, ours and the peers', gets what colorize gives its own: BatchNorm and padding folded,
    activations fused, channels-last, and `precision` as --precision takes it (weights cast once, and in
    bf16 the transposed and deep convolutions' weights packed for oneDNN). Ours
    run `predict_ab` (for classification that includes the annealed mean).
    """
    import torch

    from colorize_cli.models.inference_tuning import (
        autocast,
        autocast_dtype,
        cast_weights,
        pack_weights,
        tune_for_inference,
    )

    device = torch.device(device)
    x = torch.randn(batch, 1, *WORKING_SIZE, device=device).contiguous(memory_format=torch.channels_last)
    module = tune_for_inference(module.to(device))
    # As the Colorizer does: weights cast once to the autocast type (back to fp32 for an fp32 run).
    cast_weights(module, autocast_dtype(precision, device) or torch.float32)
    if autocast_dtype(precision, device) == torch.bfloat16:
        pack_weights(module, x[:1])
    forward = getattr(module, "predict_ab", module)
    with torch.inference_mode(), autocast(device, autocast_dtype(precision, device)):
        forward(x)  # warm-up: oneDNN picks its kernels for this shape
        runs, start = 0, time.perf_counter()
        while True:
            forward(x)
            runs += 1
            if device.type == "cuda":
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds or runs >= 20:
                return runs * batch / elapsed


def our_networks(device):
    """Each model of the zoo: shipped weights where present, else the default config random-initialised."""
    from colorize_cli.colorize.colorizer import weights_dir
    from colorize_cli.models import MODEL_NAMES, build_model
    from colorize_cli.models.checkpoint import load_checkpoint

    for name in MODEL_NAMES:
        path = weights_dir() / f"{name}.safetensors"
        model = load_checkpoint(path, device)[0] if path.is_file() else build_model(name)
        yield name, model, path.is_file()


def precision_name(device):
    """What --precision auto runs at on `device`."""
    import torch

    from colorize_cli.models.inference_tuning import autocast_dtype

    return "bf16 autocast (native here)" if autocast_dtype("auto", torch.device(device)) else "fp32"


def machine_line():
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical cores; Python {platform.python_version()}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} intra-op threads")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Model measured end to end [default: colorize's default].")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="Small inputs and batch 1 only (a smoke test).")
    args = parser.parse_args()


    import peers

    from colorize_cli.colorize.colorizer import DEFAULT_MODEL

    model = args.model or DEFAULT_MODEL
    started = time.perf_counter()
    lines = [
        "# Speed: colorize end to end, the I/O floor and the networks, measured in one run",
        "",
        f"Machine: {machine_line()}; device `{args.device}`.",
        f"Command: `python bench/bench_speed.py{' --quick' if args.quick else ''} --device {args.device}` "
        f"(`make bench`), {time.strftime('%Y-%m-%d')}.",
        "",
        f"## End to end: `{model}` vs the I/O floor",
        "",
        f"Gray photos generated by the benchmark; {WORKERS} worker threads in both columns, each with at least 6 "
        "JPEGs (in a fresh process every worker's first image is slower; see SETS). Floor: the faster of two "
        "runs, each in a fresh process too, decode each input and write colorize's output pixels again through the same writer (Pillow JPEG q95 4:4:4; tifffile "
        "deflate; atomic and synced), nothing else. Stage shares are of the summed per-image times (threads overlap them).",
        "",
        "| input | files | floor img/s | colorize img/s | colorize MP/s | colorize / floor time | peak RSS MiB "
        "| read | network | upsample + colour | write |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    ratios, profile_target = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for label, folder, files, megapixels in make_inputs(root, QUICK_SETS if args.quick else SETS):
            out = root / f"out-{folder.name}"
            report = colorize_end_to_end(folder, out, model, args.device)
            # The faster of two floors: a noisy floor must not flatter colorize.
            floor = min(io_floor(files, [out / path.name for path in files], root / f"floor-{folder.name}")
                        for _ in range(2))
            seconds, stages = report["seconds"], report["stages"]
            total = sum(stages.values()) or 1.0
            share = {k: f"{100 * stages.get(k, 0) / total:.0f} %" for k in ("read", "network", "colour", "write")}
            ratios[label] = seconds / floor
            if files[0].suffix == ".jpg" and megapixels <= 12.5:  # the largest JPEG up to 12 MP is profiled
                profile_target = (label, files[0])
            lines.append(
                f"| {label} | {len(files)} | {len(files) / floor:.2f} | {len(files) / seconds:.2f} "
                f"| {len(files) * megapixels / seconds:.1f} | {seconds / floor:.2f}x | {report['peak_rss'] / 2**20:.0f} "
                f"| {share['read']} | {share['network']} | {share['colour']} | {share['write']} |"
            )
            print(lines[-1], flush=True)

        label, path = profile_target
        stages = stage_profile(path, model, args.device, root)
        total = sum(stages.values())
        floor_ms = stages["decode (to codes)"] + stages["encode + write"]
        lines += [
            "",
            f"## Where the time goes: one {label} image, one thread",
            "",
            "Each stage alone, best of 3 (as one batch worker runs it; the batch runs one image per worker).",
            "",
            "| stage | ms | share |",
            "|---|--:|--:|",
            *(f"| {stage} | {ms:.1f} | {100 * ms / total:.0f} % |" for stage, ms in stages.items()),
            f"| total | {total:.1f} | {total / floor_ms:.2f}x decode + encode |",
        ]
        print("\n".join(lines[-len(stages) - 3:]), flush=True)

        lines += [
            "",
            f"## Networks at the working size {WORKING_SIZE[0]}x{WORKING_SIZE[1]}",
            "",
            "Ours with the shipped weights; the peers random-initialised (their weights cannot be downloaded; "
            "speed does not depend on them). All get the same treatment as colorize gives its models: BatchNorm "
            "and padding folded, activations fused into oneDNN's convolutions, weights cast once (in bf16 the "
            "transposed and deep convolutions' packed for oneDNN), channels-last, "
            f"inference mode, precision {precision_name(args.device)}.",
            "",
            "| network | parameters | img/s batch 1 | img/s batch 8 | img/s batch 1, fp32 |",
            "|---|--:|--:|--:|--:|",
        ]
        batches = (1,) if args.quick else (1, 8)
        speeds = {}
        networks = [(name, net, shipped) for name, net, shipped in our_networks(args.device)]
        networks += [(name, build(), False) for name, build in peers.PEERS.items()]
        for name, net, shipped in networks:
            speeds[name] = {batch: network_speed(net, batch, args.device) for batch in batches}
            speeds[name]["fp32"] = network_speed(net, 1, args.device, precision="fp32")
            cells = " | ".join(f"{speeds[name][b]:.2f}" if b in speeds[name] else "-" for b in (1, 8, "fp32"))
            lines.append(f"| {name}{'' if shipped or name in peers.PEERS else ' (random init)'} "
                         f"| {peers.parameter_count(net) / 1e6:.2f} M | {cells} |")
            print(lines[-1], flush=True)

    lines += ["", "## Ratios and targets", ""]
    for peer in peers.PEERS:
        for batch in (*batches, "fp32"):
            ratio = speeds[model][batch] / speeds[peer][batch]
            setting = "batch 1, both fp32" if batch == "fp32" else f"batch {batch}"
            lines.append(f"- `{model}` network vs {peer}, {setting}: {ratio:.1f}x the throughput "
                         f"(target >= {NETWORK_TARGET:g}x: {'met' if ratio >= NETWORK_TARGET else 'NOT met'})")
    for label, ratio in ratios.items():
        limit = next((limit for prefix, limit in FLOOR_TARGETS.items() if label.startswith(prefix)), None)
        target = "" if limit is None else f" (target <= {limit:g}x: " + ("met)" if ratio <= limit else "NOT met)")
        note = ""
        if "TIFF" in label:
            note = (" (one file whose time is mostly one synced write of about 500 MB, which took from 2.5 to 5 s "
                    "on this VM's disk from run to run: read the peak memory, not this ratio)")
        lines.append(f"- {label}: colorize takes {ratio:.2f}x the I/O floor's time{target}{note}")
    lines += ["", f"Benchmark wall time: {time.perf_counter() - started:.0f} s.", ""]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
