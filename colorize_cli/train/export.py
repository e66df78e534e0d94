"""`colorize train export`: a run's weights in the shipped format (fp16) and a model card filled from the run."""

import json
from dataclasses import asdict
from pathlib import Path

import torch

from colorize_cli.models import build_model
from colorize_cli.models.checkpoint import (
    load_checkpoint,
    record_checksum,
    save_checkpoint,
)
from colorize_cli.photos.fsutil import atomic_write
from colorize_cli.train.datasets import data_name, dataset_summary
from colorize_cli.train.loop import RunConfig, TrainingError, load_settings, run_lineage
from colorize_cli.train.recipes import recipe_class
from colorize_cli.train.run_folder import RunFolder

CHOICES = ("best", "last")
# Metrics in the card's table, with their units.
_TABLE = (("auc", "AuC of the ab error curve (%)"), ("psnr", "PSNR (dB)"), ("colourfulness", "colourfulness"),
          ("colourfulness_truth", "colourfulness of the truth"), ("chroma_ratio", "chroma ratio (pred / truth)"))


def export_run(run_dir, out, *, which="best", notes=None, model_config=None) -> tuple[Path, Path]:
    """Write `out` (fp16 weights with the run in its header) and the card `out` with suffix .md beside it.

    `model_config` changes model hyper-parameters that leave the weights as they are (a decoding setting such as
    classification's temperature); one that would change the network is refused.
    """
    folder, out = RunFolder(run_dir), Path(out)
    config = load_settings(folder.path)
    state = folder.load_state("cpu")
    if state is None:
        raise TrainingError(f"{folder.path} has no checkpoint yet; train it for at least one save")
    source = _source(folder, which)
    model, header = load_checkpoint(source)
    if model_config:
        model = _with_config(model, model_config)
    step = header["training"]["trained_steps"]
    records = folder.read_metrics()
    scores = _validation_at(records, step)
    training = {
        "run": asdict(config),
        "exported": f"step {step} ({_describe_source(source, folder, state)}) of a run trained for {state['step']} steps"
        + (f", with {_pairs(model_config)} set at export" if model_config else ""),
        "steps": step,
        "wall_seconds": round(state["elapsed"], 1),
        "sessions": state["sessions"],
        "lineage": _lineage(folder, state),
        "data": _data_summary(config.data),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, model, training=training, metrics=scores, dtype=torch.float16)
    record_checksum(out)
    card = out.with_suffix(".md")
    text = model_card(out, model, config, training, scores, _gray_scores(records))
    if notes is not None:
        text += "\n" + Path(notes).read_text()
    with atomic_write(card) as tmp:
        Path(tmp).write_text(text)
    return out, card


def _lineage(folder, state):
    """The runs the weights started from (run_lineage of this run, less this run itself)."""
    return run_lineage(folder.path, state)[:-1]


def _source(folder, which):
    """The weights file that `which` (best, last or a kept step number) names."""
    if isinstance(which, int):
        path = folder.history_weights(which)
        if not path.exists():
            kept = folder.kept_steps()
            listed = ", ".join(map(str, kept)) if kept else "none (train with --keep-every to keep some)"
            raise TrainingError(f"{folder.path} keeps no weights of step {which}; kept steps: {listed}")
        return path
    return folder.best_weights if which == "best" and folder.best_weights.exists() else folder.last_weights


def _with_config(model, config):
    """The same weights in a model built with `config` changed; TrainingError if the weights no longer fit."""
    try:
        changed = build_model(model.name, {**asdict(model.config), **config})
        changed.load_state_dict(model.state_dict())
    except (ValueError, TypeError) as err:
        raise TrainingError(f"--config {_pairs(config)}: {err}") from None
    except RuntimeError:
        raise TrainingError(f"--config {_pairs(config)} changes the network's shape; at export only settings "
                            "that keep the weights (such as temperature) can change") from None
    return changed


def _pairs(config):
    return " ".join(f"{key}={value}" for key, value in config.items())


def model_card(weights, model, config, training, scores, gray) -> str:
    """Markdown describing the weights: data, recipe, training time and hardware, validation metrics."""
    parameters = sum(p.numel() for p in model.parameters())
    recipe = recipe_class(config.model)
    lines = [
        f"# `{weights.name}`: the {config.model} colorizer",
        "",
        (
            f"{parameters:,} parameters, stored in fp16 ({weights.stat().st_size / 2**20:.1f} MiB); "
            f"exported from {training['exported']} by `colorize train`."
        ),
        "",
        "## Data",
        "",
        f"- source: `{data_name(config.data)}`",
        *(f"- {key}: {json.dumps(value)}" for key, value in training["data"].items()),
        "",
        "## Recipe",
        "",
        f"- loss: {recipe.summary}",
        f"- model config: `{json.dumps(asdict(model.config), sort_keys=True)}`",
        f"- {training['steps']} steps (of {config.steps} planned), batch {config.batch_size} per process, "
        f"random {config.crop_size} px crops"
        + (f" of squares up to {config.zoom_out:g}x that side, shrunk to it," if config.zoom_out > 1 else "")
        + f" with flips, Adam lr {config.lr:g}, seed {config.seed}"
        + (f", {config.old_film:.0%} of them given the lightness an old red-blind emulsion records"
           if config.old_film else "")
        + (f", {config.aged_print:.0%} of them given the lightness of an aged print (blurred, faded, grained)"
           if config.aged_print else "")
        + (f", top folders drawn in proportion to their photos ** {1 - config.balance_folders:g}"
           if config.balance_folders else "")
        + (f", on {config.train_share:g} of the training photos (chosen by content hash)"
           if config.train_share < 1 else "")
        + (f", generator warm-up {config.warmup_steps} steps" if config.model == "gan" else "")
        + (f", every learning rate falling linearly from step {config.decay_from} to {config.decay_to:g}x at step "
           f"{config.steps}" if config.decay_from is not None else ""),
        *([f"- started from the weights of `{config.init_from}` at step {config.init_step} (its own data, recipe "
           "and training are that run's; see Lineage), not from its optimizer state"] if config.init_from else []),
        "",
        "## Training",
        "",
        f"- wall time: {_duration(training['wall_seconds'])} in {len(training['sessions'])} session(s)",
        *(
            f"- {s['started']}: steps {s['first_step']}-{s['last_step']} in {_duration(s['seconds'])} on "
            f"{s['hardware']}, torch {s['torch']}, {'bf16 autocast' if s['amp'] else 'fp32'}"
            for s in training["sessions"]
        ),
        "",
        "## Validation",
        "",
    ]
    if scores:
        lines += [
            f"Held-out split, centre crops of {config.crop_size} px, colored at that size:",
            "",
            "| metric | this model | gray baseline |",
            "|---|---|---|",
            *(f"| {label} | {_number(scores.get(key))} | {_number(gray.get(key))} |" for key, label in _TABLE),
        ]
    elif gray:
        lines.append("This step was not validated during training (it is not a multiple of --val-every).")
    else:
        lines.append("No validation was run at this step (the data has no held-out split).")
    lineage = training.get("lineage") or []
    if lineage:
        lines += ["", "## Lineage", "",
                  "The weights this run started from, oldest first (their commands open Reproduce):", ""]
        for ancestor in lineage:
            sessions = ancestor.get("sessions") or []
            seconds = ancestor.get("seconds")
            lines.append(
                f"- `{ancestor['source']}` at step {ancestor['step']}"
                + (f": {_duration(seconds)} in {len(sessions)} session(s)" if seconds is not None else "")
                + ("; " + ", ".join(sorted({s["hardware"] for s in sessions})) if sessions else "")
            )
    lines += [
        "",
        "## Reproduce",
        "",
        "```",
        *[_reproduce(_settings(ancestor["settings"])) for ancestor in lineage if ancestor.get("settings")],
        _reproduce(config),
        "```",
        "",
    ]
    return "\n".join(lines)


def _settings(recorded):
    """A RunConfig from recorded settings, ignoring keys of other versions."""
    known = set(RunConfig.__dataclass_fields__)
    return RunConfig(**{key: value for key, value in recorded.items() if key in known})


def _reproduce(config):
    """The `colorize train` command line of a run's settings."""
    return (
        f"colorize train --model {config.model} --data {data_name(config.data)} --steps {config.steps} "
        f"--batch-size {config.batch_size} --crop-size {config.crop_size} --lr {config.lr:g} --seed {config.seed}"
        + (f" --zoom-out {config.zoom_out:g}" if config.zoom_out > 1 else "")
        + (f" --old-film {config.old_film:g}" if config.old_film else "")
        + (f" --aged-print {config.aged_print:g}" if config.aged_print else "")
        + (f" --balance-folders {config.balance_folders:g}" if config.balance_folders else "")
        + (f" --train-share {config.train_share:g}" if config.train_share < 1 else "")
        + (f" --init-from {config.init_from}" if config.init_from else "")
        + (f" --warmup-steps {config.warmup_steps}" if config.model == "gan" else "")
        + (f" --decay-from {config.decay_from} --decay-to {config.decay_to:g}" if config.decay_from is not None else "")
        + "".join(f" --config {key}={_shell_value(value)}" for key, value in sorted(config.model_config.items()))
        + {None: "", True: " --amp", False: " --no-amp"}[config.amp]
    )


def _shell_value(value):
    """A --config value as the CLI reads it back (JSON for lists, with no spaces to quote)."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _validation_at(records, step):
    for record in reversed(records):
        if record["split"] == "val" and record["step"] == step:
            return {k: v for k, v in record.items() if k not in ("step", "split")}
    return {}


def _gray_scores(records):
    return next(({k: v for k, v in r.items() if k not in ("step", "split")} for r in records
                 if r["split"] == "gray"), {})


def _data_summary(data):
    try:
        return dataset_summary(data)
    except (OSError, ValueError) as err:
        return {"note": f"summary unavailable ({err})"}


def _describe_source(source, folder, state):
    best = state["best"]
    if source == folder.best_weights and best is not None:
        return f"the best by validation {best['metric']}"
    if source.parent == folder.history:
        return "kept in the run's history, chosen after training"
    return "the latest checkpoint"


def _duration(seconds):
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 60 else f"{int(minutes // 60)} h {int(minutes % 60):02d} min"


def _number(value):
    return "-" if value is None else f"{value:.3f}"
