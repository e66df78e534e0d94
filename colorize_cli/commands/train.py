"""`colorize train`: train a model of the zoo into a run folder; `colorize train export` ships it."""

import dataclasses
import json
import re
import signal
from dataclasses import replace
from pathlib import Path

import click

from colorize_cli.commands.common import FatalError, device_option, user_errors
from colorize_cli.models import MODEL_NAMES, config_class
from colorize_cli.models.checkpoint import CheckpointError
from colorize_cli.train.export import CHOICES, export_run
from colorize_cli.train.loop import (
    RunConfig,
    Session,
    TrainingError,
    default_workers,
    initial_weights_source,
    load_settings,
    train,
)
from colorize_cli.train.recipes import recipe_class
from colorize_cli.train.run_folder import RunFolderError
from colorize_cli.train.validation import BEST_METRICS

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([hms]?)")
_SECONDS = {"h": 3600, "m": 60, "s": 1, "": 1}
_DEFAULTS = RunConfig()
_DEFAULT_LRS = ", ".join(f"{name} {recipe_class(name).default_lr:g}" for name in MODEL_NAMES)


class Duration(click.ParamType):
    """A time span such as 90s, 30m, 2h or 1h30m (a bare number means seconds)."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        text = value.strip().lower()
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            self.fail(f"{value!r} is not a duration like 90s, 30m, 2h or 1h30m", param, ctx)
        return sum(float(number) * _SECONDS[unit] for number, unit in parts)


def _parse_config(ctx, param, pairs):
    """KEY=VALUE pairs; each value is read as JSON (numbers, true/false) or else kept as text."""
    config = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", ctx, param)
        try:
            config[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            config[key.strip()] = value
    return config


def _config_keys():
    lines = []
    for name in MODEL_NAMES:
        keys = [f"{f.name}={f.default}" for f in dataclasses.fields(config_class(name))]
        lines.append(f"  {name}: {', '.join(keys) or '(none: the seed fixes every layer)'}")
    return "\n".join(lines)


_EPILOG = f"""\b
Examples:
  colorize train --model gan --data photos/ --out runs/gan-1 --time-limit 2h
  colorize train --resume runs/gan-1 --time-limit 2h       # continue exactly where it stopped
  colorize train --resume runs/gan-1 --steps 14000 --decay-from 11000   # end with a lower learning rate
  colorize train --init-from runs/gan-1 --data photos/ --out runs/gan-1-192 --crop-size 192 --zoom-out 1.33 \\
      --warmup-steps 0 --lr 2e-5 --steps 4000                # fine-tune on larger, wider crops
  colorize train --model cnn --data data/places --out runs/cnn-1 --steps 20000 --device cuda
  colorize train --model regression --data photos/ --out runs/reg-1 --config loss=l1 --config width=48
  torchrun --nproc_per_node 8 -m colorize_cli train --model gan --data data/ --out runs/gan-8gpu
  colorize train export runs/gan-1 --out weights/gan.safetensors

\b
A run folder holds run.json (settings), last.pt (training state for --resume), last.safetensors
and best.safetensors (weights for `colorize --model PATH`), metrics.jsonl, loss.png,
validation.png and samples/ (a sheet of validation images per validation).
Ctrl-C or SIGTERM finishes the current step, saves and exits; a second Ctrl-C aborts.
\b
Model hyper-parameters for --config KEY=VALUE (by default gan's train_size follows --crop-size
and autoencoder's num_scenes the number of labels in the data):
{_config_keys()}"""


@click.group(
    "train",
    invoke_without_command=True,
    no_args_is_help=True,
    subcommand_metavar="[export RUN --out FILE]",
    epilog=_EPILOG,
)
@click.option("--model", type=click.Choice(MODEL_NAMES), help=f"Model to train [default: {_DEFAULTS.model}].")
@click.option("--data", type=click.Path(exists=True, file_okay=False), help="A folder of photos (recursive) or a prep-dataset output.")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder to create (with --resume: the resumed run).")
@click.option("--resume", type=click.Path(exists=True), metavar="RUN", help="Continue the run in folder RUN (its settings are kept).")
@click.option("--steps", type=click.IntRange(min=1), help=f"Total optimisation steps of the run [default: {_DEFAULTS.steps}].")
@click.option("--time-limit", type=Duration(), help="Stop cleanly (and save) after this long, e.g. 90s, 30m, 2h, 1h30m.")
@click.option("--batch-size", type=click.IntRange(min=1), help=f"Images per step and process [default: {_DEFAULTS.batch_size}].")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help=f"Adam learning rate [default: the recipe's: {_DEFAULT_LRS}].")
@click.option("--crop-size", type=click.IntRange(min=8), help=f"Training crop side in px (a multiple of the model's size multiple) [default: {_DEFAULTS.crop_size}].")
@click.option("--zoom-out", type=click.FloatRange(min=1), help=f"Each random crop covers up to this many times its side of the photo, shrunk to the crop, so that whole-photo context is learnt too [default: {_DEFAULTS.zoom_out:g}: the stored scale].")
@click.option("--old-film", type=click.FloatRange(0, 1), metavar="SHARE", help="Give this share of the random crops, as input, the lightness that an old orthochromatic or blue-sensitive emulsion (before panchromatic film) would record, so that white skies and dark reds of old photographs are understood; the target colour stays the photo's [default: 0].")
@click.option("--aged-print", type=click.FloatRange(0, 1), metavar="SHARE", help="Give this share of the random crops an input lightness blurred, faded and grained at random as an old print's, so that soft, grainy, faded photographs are coloured as clean ones; the target colour stays the photo's [default: 0].")
@click.option("--balance-folders", type=click.FloatRange(0, 1), metavar="POWER", help="Draw each top folder of the data (e.g. a source collection) in proportion to its photos ** (1 - POWER): 0 keeps the data's own mix, 1 draws every folder equally often, 0.5 is square-root balance [default: 0].")
@click.option("--train-share", type=click.FloatRange(0, 1, min_open=True), metavar="SHARE", help="Train on this share of the training photos, chosen by a hash of their content, so that a smaller share is part of a larger one (runs at 0.125, 0.25, 0.5, 1 give a learning curve); validation keeps all its photos [default: 1].")
@click.option("--init-from", type=click.Path(exists=True), metavar="RUN|WEIGHTS", help="Start a new run from the weights of another run (its last checkpoint, gan's critic included) or of a weights file, e.g. to fine-tune at another crop size; not its optimizer state or step.")
@click.option("--warmup-steps", type=click.IntRange(min=0), help=f"gan: steps on the L1 loss alone before the adversarial phase [default: {_DEFAULTS.warmup_steps}].")
@click.option("--config", "model_config", multiple=True, metavar="KEY=VALUE", callback=_parse_config, help="A model hyper-parameter, e.g. width=16 or loss=l1. Repeatable.")
@click.option("--amp/--no-amp", default=None, help="bf16 autocast with channels-last, on CPU and CUDA [default: where the device runs bf16 natively (AVX-512 BF16 or AMX; Ampere or later); emulated bf16 trains many times slower than fp32].")
@click.option("--seed", type=int, help=f"Seed of the initial weights, data order and augmentation [default: {_DEFAULTS.seed}].")
@click.option("--val-every", type=click.IntRange(min=1), help=f"Validate every N steps [default: {_DEFAULTS.val_every}].")
@click.option("--save-every", type=click.IntRange(min=1), help=f"Checkpoint every N steps (and always at exit) [default: {_DEFAULTS.save_every}].")
@click.option("--decay-from", type=click.IntRange(min=0), help="From this step every learning rate falls linearly, to --decay-to times it at the last step (e.g. after a resume with more --steps) [default: no decay].")
@click.option("--decay-to", type=click.FloatRange(0, 1), help=f"The learning rates' factor at the last step when decaying [default: {_DEFAULTS.decay_to:g}].")
@click.option("--keep-every", type=click.IntRange(min=0), help="Also keep the weights of every N-th step in the run's history/ folder, to choose a step later (0: keep none) [default: 0].")
@click.option("--best-metric", type=click.Choice(BEST_METRICS), help=f"Validation metric that picks best.safetensors [default: {_DEFAULTS.best_metric}].")
@click.option("--workers", type=click.IntRange(min=0), default=default_workers(), show_default=True, help="Data-loading processes (0: load in the training process).")
@click.option("--log-every", type=click.IntRange(min=1), default=25, show_default=True, help="Log the mean losses every N steps.")
@device_option
@click.pass_context
@user_errors(TrainingError, RunFolderError)
def train_command(ctx, out, resume, time_limit, workers, log_every, device, **settings):
    """Train a colorization model on a folder of photos, resumably, on CPU, one GPU or many.

    Each model trains with its own recipe: MSE (cnn), L1 or L2 (regression), class-rebalanced
    cross-entropy over 313 ab bins (classification), MSE plus scene labels when the data has them
    (autoencoder), and for gan an L1 warm-up followed by the pix2pix loss (BCE with label
    smoothing + 100 L1). Validation on the held-out split reports PSNR, AuC and colourfulness.
    Under torchrun each process trains on its share of every batch (DDP); only rank 0 writes.
    """
    if ctx.invoked_subcommand is not None:
        return
    overrides = {name: value for name, value in settings.items() if value not in (None, {})}
    if resume:
        run_dir = Path(resume) if Path(resume).is_dir() else Path(resume).parent
        if out and Path(out).resolve() != run_dir.resolve():
            raise FatalError(f"--out {out} differs from the resumed run {run_dir}; a resumed run stays in its folder")
        out = run_dir
        config = replace(load_settings(run_dir), **overrides)
    else:
        if not settings["data"] or not out:
            raise FatalError("--data and --out are needed to start a run (or --resume RUN to continue one)")
        if overrides.get("init_from") and "model" not in overrides:
            overrides["model"] = initial_weights_source(overrides["init_from"])[0]
        config = RunConfig(**overrides)
    session = Session(device=device, workers=workers, time_limit=time_limit, log_every=log_every)
    result = train(config, out, session=session, resume=bool(resume), log=lambda line: click.echo(line, err=True))
    if result.stopped_by in ("SIGINT", "SIGTERM"):
        ctx.exit(128 + signal.Signals[result.stopped_by].value)


class CheckpointChoice(click.ParamType):
    """best, last, or a step number (of the run's history)."""

    name = "best|last|STEP"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value in CHOICES:
            return value
        if str(value).isdigit():
            return int(value)
        self.fail(f"{value!r} is not best, last or a step number", param, ctx)


@train_command.command(
    "export",
    epilog="""\b
Examples:
  colorize train export runs/gan-1 --out weights/gan.safetensors
  colorize train export runs/cnn-1 --out weights/cnn.safetensors --checkpoint last --notes cnn-notes.md
  colorize train export runs/gan-1 --out weights/gan.safetensors --checkpoint 8000   # kept by --keep-every
  colorize train export runs/classification-1 --out weights/classification.safetensors --config temperature=0.7""",
)
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Weights file to write (.safetensors); the card goes beside it as .md.")
@click.option("--checkpoint", "which", type=CheckpointChoice(), default="best", show_default=True, help="best (validated), last, or a step number kept in the run's history/ (--keep-every); best falls back to last when the run was never validated.")
@click.option("--notes", type=click.Path(exists=True, dir_okay=False), help="A Markdown file appended to the card (observations, failure modes).")
@click.option("--config", "model_config", multiple=True, metavar="KEY=VALUE", callback=_parse_config, help="Change a setting that keeps the weights, e.g. temperature=0.7 for classification. Repeatable.")
@user_errors(TrainingError, RunFolderError, CheckpointError)
def export_command(run, out, which, notes, model_config):
    """Write a run's weights in the shipped format (fp16) with a model card filled from the run."""
    weights, card = export_run(run, out, which=which, notes=notes, model_config=model_config)
    click.echo(f"wrote {weights} and {card}", err=True)
