"""`colorize colorize PATH...` (the default command): the batch job."""

import json
import os
import signal
import sys

import click

from colorize_cli.colorize.batch import BatchOptions, run_batch
from colorize_cli.colorize.colorizer import DEFAULT_MODEL, Colorizer
from colorize_cli.colorize.diagnostics import diagnostics_paths
from colorize_cli.commands.common import device_option, precision_option, user_errors
from colorize_cli.models.checkpoint import CheckpointError
from colorize_cli.models.inference_tuning import PrecisionError
from colorize_cli.photos.discovery import (
    NO_SIDECARS,
    InputError,
    default_output_dir,
    in_shard,
    parse_shard,
    plan_jobs,
    read_path_list,
)
from colorize_cli.progress import progress_reporter
from colorize_cli.stop_signals import StopSignals

DEFAULT_WORKERS = min(os.cpu_count() or 1, 4)


@click.command(
    "colorize",
    epilog="""\b
Examples:
  colorize ./old_photos                       # -> ./old_photos_colorized/, same tree
  colorize scans/ -o out/ --model gan --device cuda --format tif
  find /archive -name '*.tif' | colorize --files-from - -o /colour --json
  colorize big_scan.tif --render-size 384 --saturation 1.2 --diagnostics
  colorize ./box --shard 3/8 -o out/          # machine 3 of 8 takes its 1/8 of the files

\b
Exit codes: 0 every image done (or already done), 1 some image failed (a full or
read-only output disk stops the batch: free space and rerun to resume), 2 usage error
or no usable model, 130 / 143 interrupted by SIGINT / SIGTERM (rerun to resume).""",
)
@click.argument("inputs", nargs=-1, type=click.Path(path_type=str))
@click.option("--files-from", type=click.File("r"), help="Read input paths from FILE, one per line (- for stdin).")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), help="Output folder [default: <input>_colorized beside the input].")
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Shipped model name (cnn, regression, classification, autoencoder, gan) or a checkpoint path.")
@device_option
@click.option("--render-size", type=click.IntRange(32, 4096), help="Working size: the SHORT side, in px, the network sees; larger photos are shrunk to it, smaller ones kept (but at least the network's minimum, two of its size multiples) [default: the model's].")
@click.option("--saturation", type=click.FloatRange(0, 4), default=1.0, show_default=True, help="Scale predicted chroma (1.0 = model output).")
@click.option("--format", "output_format", type=click.Choice(["same", "jpg", "png", "tif"]), default="same", show_default=True, help="Output format; same keeps JPEG/PNG/TIFF, others become PNG. 16-bit inputs give 16 bits per channel in TIFF and PNG (48-bit RGB); JPEG holds 8.")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG quality.")
@click.option("--overwrite", is_flag=True, help="Redo outputs that already exist (default: skip them, so reruns resume).")
@click.option("--diagnostics", is_flag=True, help="Also write <output name>.diagnostics.png (L, a, b, result) and .diagnostics.json beside each output.")
@click.option("--shard", help="K/N: process only the K-th of N deterministic parts of the inputs.")
@click.option("--batch-size", type=click.IntRange(1, 256), default=1, show_default=True, help="Images of the same size that go through the network together, on the main thread while the workers read and write (helps on GPUs).")
@click.option("--workers", type=click.IntRange(1, 64), default=DEFAULT_WORKERS, show_default=True, help="Worker threads; at --batch-size 1 each takes one image from file to file (torch single-threaded on CPU). Default: one per core, at most 4 (each holds an image: ~0.3 GB at 24 MP).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per image on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and warnings: no progress, no summary.")
@precision_option
@user_errors(InputError, CheckpointError, PrecisionError)
def colorize_command(inputs, files_from, out_dir, model, device, render_size, saturation, output_format,
                     quality, overwrite, diagnostics, shard, batch_size, workers, as_json, quiet, precision):
    """Colorize photographs: files, folders (recursive) or a list of paths.

    Colour and gray inputs both work (colour is converted to L first). The network predicts the
    Lab a,b channels at a small working size; they are upsampled guided by the full-resolution L
    and recombined with the original L, so no detail is lost. 16-bit inputs give 16-bit TIFFs and
    PNGs. Colour under a non-sRGB ICC profile (Adobe RGB...) is converted to sRGB first, and
    its output carries an sRGB profile; EXIF (orientation applied), resolution and an sRGB
    profile are kept (a gray or CMYK profile cannot describe colour: a warning says it is not
    carried over), and every output is tagged as AI-colorized. Inputs are never modified; outputs are
    written atomically.
    """
    paths = list(inputs) + (read_path_list(files_from) if files_from else [])
    if not paths:
        raise click.UsageError("give at least one file or folder, or --files-from")
    jobs = plan_jobs(paths, out_dir or default_output_dir(paths), output_format,
                     sidecars=diagnostics_paths if diagnostics else NO_SIDECARS)
    if shard:
        index, count = parse_shard(shard)
        jobs = [job for job in jobs if in_shard(job, index, count)]
    colorizer = Colorizer.from_checkpoint(model, device, render_size, saturation, precision)
    options = BatchOptions(overwrite, quality, diagnostics, workers, batch_size)
    finished = failed = 0
    with StopSignals() as signals, progress_reporter(len(jobs), enabled=not (quiet or as_json)) as report:
        for result in run_batch(jobs, colorizer, options, should_stop=lambda: signals.reason is not None):
            finished += 1
            failed += result.status == "failed"
            if as_json:
                click.echo(json.dumps(result.as_dict()))
            if result.status == "failed":
                report.error(f"error: {result.source}: {result.error}")
            report.advance(result)
        untried = len(jobs) - finished
        if signals.reason:
            report.error(f"stopped by {signals.reason}: {untried} image(s) not tried; rerun to resume")
        elif untried:
            report.error(f"error: stopped with {untried} image(s) not tried: the output disk is full or read-only; "
                         "make room and rerun to resume")
    if not (quiet or as_json):
        done = finished - failed
        click.echo(f"{done} of {len(jobs)} image(s) colorized or already done, {failed} failed", err=True)
    if signals.reason:
        sys.exit(128 + signal.Signals[signals.reason])
    sys.exit(1 if failed or untried else 0)
