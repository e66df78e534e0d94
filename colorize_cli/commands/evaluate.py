"""`colorize evaluate`: score our models and other tools' outputs against colour photographs."""

import contextlib
import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from colorize_cli.commands.common import (
    FatalError,
    device_option,
    precision_option,
    user_errors,
)
from colorize_cli.evaluate.report import evaluate_folder, resolve_methods, write_report
from colorize_cli.models.checkpoint import CheckpointError
from colorize_cli.models.inference_tuning import PrecisionError
from colorize_cli.progress import one_line

# Problems listed on the terminal; report.md and report.json list them all.
SHOWN_PROBLEMS = 10


@click.command(
    "evaluate",
    epilog="""\b
Examples:
  colorize evaluate val_photos/                         # the gray baseline alone
  colorize evaluate val_photos/ --model gan --model cnn --out eval/
  colorize evaluate val_photos/ --model runs/gan-1/best.safetensors --render-size 384
  colorize evaluate val_photos/ --predictions deoldify_out/ --predictions ddcolor_out/
  colorize evaluate val_photos/ --model gan --crop 0 --json > report.json

\b
Columns: AuC = area under the cumulative per-pixel ab error curve, thresholds 0-150
(Zhang et al. 2016; 100 = perfect), raw and rebalanced by the rarity of each pixel's true
colour; PSNR (8-bit RGB) and SSIM; colourfulness (Hasler and Suesstrunk 2003) and its
distance |dCF| to the truth's; chroma ratio = predicted over true mean chroma (< 1: dull).""",
)
@click.argument("photos", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--model", "models", multiple=True, metavar="NAME|PATH",
    help="A model to score: the name of shipped weights (gan, cnn, ...) or a checkpoint path. Repeatable.",
)
@click.option(
    "--predictions", "prediction_dirs", multiple=True, metavar="DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder of another tool's outputs, matched to PHOTOS by relative path (any image suffix); "
    "they must have the photos' sizes. Repeatable.",
)
@click.option(
    "--crop", type=click.IntRange(min=0), default=256, show_default=True,
    help="Resize each photo's short side to this and score the centre square (the papers' protocol); "
    "0 scores full images.",
)
@click.option(
    "--out", "out_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
    help="Write report.json, report.md, error_curves.png and contact_sheet.png here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout instead of the table.")
@click.option("--limit", type=click.IntRange(min=1), help="Score only the first N photos (sorted by path).")
@click.option(
    "--examples", type=click.IntRange(min=0), default=4, show_default=True,
    help="Contact-sheet rows: this many photos with the largest and the smallest error.",
)
@device_option
@click.option(
    "--render-size", type=click.IntRange(min=16),
    help="Working size (short side, px) of the networks; default: each model's own.",
)
@click.option(
    "--saturation", type=click.FloatRange(min=0.0), default=1.0, show_default=True,
    help="Multiply the models' predicted chroma by this (not applied to --predictions).",
)
@precision_option
@user_errors(CheckpointError, PrecisionError)
def evaluate_command(
    photos, models, prediction_dirs, crop, out_dir, as_json, limit, examples, device, render_size, saturation,
    precision,
):
    """Measure colour quality against ground truth: the gray baseline, --model and --predictions.

    Each colour photo under PHOTOS (recursively) is turned into its lightness L, colorized by every
    model, and compared with the original; --predictions folders score other colorizers' outputs
    with the same code. The gray baseline (no colour at all) is always in the table, as in the papers.
    Unreadable or colourless photos, missing predictions and size mismatches are counted and listed,
    never fatal. Exit codes: 0 all scored (colourless photos are only left out), 1 some photo or
    prediction could not be scored, 2 usage error or no colour photo to score.
    """
    for folder in [out_dir, *prediction_dirs]:
        if folder is not None and _inside(folder, photos):
            raise FatalError(f"{folder} is inside {photos}; its images would be scored as photos")
    colorizers, predictions = resolve_methods(models, prediction_dirs, device, render_size, saturation, precision)
    with _progress_bar(enabled=not as_json) as progress:
        report = evaluate_folder(
            photos, colorizers, predictions, crop=crop or None, limit=limit, examples=examples, progress=progress
        )
    if report.found == 0:
        raise FatalError(f"no images under {photos}")
    if report.evaluated == 0:
        first = report.problems[0]
        raise FatalError(f"no colour photo to score under {photos}: {len(report.problems)} listed as problems, "
                         f"e.g. {first.path}: {first.reason}")
    try:
        written = write_report(report, out_dir) if out_dir else []
    except OSError as err:
        raise click.ClickException(f"{out_dir}: cannot write the report ({err.strerror or err})") from None
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=1))
    else:
        _print_summary(report, written)
    sys.exit(1 if any(not problem.excluded for problem in report.problems) else 0)


def _inside(folder, parent):
    folder, parent = folder.resolve(), parent.resolve()
    return folder == parent or parent in folder.parents


@contextlib.contextmanager
def _progress_bar(enabled):
    """Yield a progress(done, total) callback drawing a bar on an interactive stderr, else None."""
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    columns = (TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("evaluate", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _print_summary(report, written):
    console = Console()
    table = Table(title=f"{report.evaluated} photos, {'centre crop %d' % report.crop if report.crop else 'full size'}")
    for column in ("method", "photos", "AuC %", "AuC rebal. %", "PSNR dB", "SSIM", "CF", "|dCF|", "chroma ratio"):
        table.add_column(column, justify="left" if column == "method" else "right", no_wrap=column == "method")
    for m in report.methods:
        table.add_row(
            m.name, str(m.images), f"{m.auc:.2f}", f"{m.auc_rebalanced:.2f}", f"{m.psnr:.2f}", f"{m.ssim:.4f}",
            f"{m.colourfulness:.2f}", f"{m.delta_colourfulness:.2f}", f"{m.chroma_ratio:.3f}",
        )
    console.print(table)
    console.print(f"truth colourfulness {report.truth_colourfulness:.2f}", highlight=False)
    if report.problems:
        console.print(f"{len(report.problems)} problem(s):", style="yellow")
        for problem in report.problems[:SHOWN_PROBLEMS]:
            where = f" ({problem.method})" if problem.method else ""
            line = one_line(f"  {problem.path}{where}: {problem.reason}")
            console.print(line, markup=False, highlight=False, soft_wrap=True)  # one line each, never wrapped
        if len(report.problems) > SHOWN_PROBLEMS:
            console.print(f"  ... and {len(report.problems) - SHOWN_PROBLEMS} more in the report", highlight=False)
    for path in written:
        console.print(one_line(f"wrote {path}"), markup=False, highlight=False, soft_wrap=True)
