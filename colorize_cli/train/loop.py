"""The training loop: one plain function from a run's settings to checkpoints, metrics and figures.

Read `_train` top to bottom: data, model, recipe, optional resume, then the loop that steps, logs,
validates, checkpoints and stops on --steps, --time-limit or a signal.
"""

import datetime
import functools
import gc
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from colorize_cli.colour.ab_bins import ab_histogram, smoothed_prior
from colorize_cli.colour.lab import unit_to_ab
from colorize_cli.device import resolve_device
from colorize_cli.models import MODEL_NAMES, build_model, config_class
from colorize_cli.models.checkpoint import (
    CheckpointError, header_config, load_checkpoint, read_header, save_checkpoint,
)
from colorize_cli.models.efficientnet_lite import PretrainedWeightsMissing
from colorize_cli.models.inference_tuning import native_bf16
from colorize_cli.stop_signals import StopSignals
from colorize_cli.train import distributed
from colorize_cli.train.data_order import SeededItems, StepBatches, balance_weights
from colorize_cli.train.datasets import load_ab_prior, num_labels, open_dataset
from colorize_cli.train.recipes import RecipeOptions, recipe_class
from colorize_cli.train.run_folder import RunFolder, RunFolderError
from colorize_cli.train.validation import BEST_METRICS, Validator, write_sample_sheet

# A resumed run may change the other settings (more steps, another machine), not these that define it.
FIXED_ON_RESUME = ("model", "model_config", "batch_size", "lr", "crop_size", "zoom_out", "old_film", "aged_print",
                   "balance_folders", "train_share",
                   "warmup_steps", "seed", "best_metric", "init_from")
# Images whose ab histogram estimates the colour prior when the dataset has no stats.json.
PRIOR_SAMPLE = 512
NAMED_UNUSABLE = 20  # files named in the log that would not decode; the rest are counted


class TrainingError(ValueError):
    """A training run that cannot start or go on; the message is one line."""


@dataclass
class RunConfig:
    """Everything that defines a run; saved as run.json and restored by --resume."""

    model: str = "gan"
    data: str = ""
    model_config: dict = field(default_factory=dict)
    steps: int = 10_000
    batch_size: int = 16
    lr: float | None = None  # None: the recipe's default, fixed in run.json at the start
    crop_size: int = 128
    zoom_out: float = 1.0  # a random crop covers up to this many times its side of the photo, shrunk to fit
    old_film: float = 0.0  # the share of crops whose input L is what an old red-blind emulsion records
    aged_print: float = 0.0  # the share of crops whose input L is blurred, faded and grained as an old print's
    balance_folders: float = 0.0  # draw each top folder of the data in proportion to its size ** (1 - this)
    train_share: float = 1.0  # train on this share of the training photos, chosen by content hash (learning curves)
    warmup_steps: int = 1_000
    seed: int = 0
    amp: bool | None = None  # bf16 autocast; None: where the training device runs bf16 natively
    val_every: int = 500
    save_every: int = 500
    keep_every: int = 0  # 0: no history; else the weights of every multiple of it stay in history/
    decay_from: int | None = None  # from this step every learning rate falls linearly, to decay_to x at `steps`
    decay_to: float = 0.1
    best_metric: str = "auc"
    init_from: str | None = None  # a run folder or weights file whose weights the run starts from
    init_step: int | None = None  # the step of those weights, recorded when the run starts

    def __post_init__(self):
        if self.model not in MODEL_NAMES:
            raise TrainingError(f"unknown model {self.model!r}; choose one of: {', '.join(MODEL_NAMES)}")
        for name in ("steps", "batch_size", "crop_size", "val_every", "save_every"):
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.warmup_steps < 0:
            raise TrainingError(f"warmup_steps must be 0 or more, got {self.warmup_steps}")
        if self.decay_from is not None and not 0 <= self.decay_from < self.steps:
            raise TrainingError(f"decay_from must be a step from 0 to steps - 1 ({self.steps - 1}), got {self.decay_from}")
        if not 0 <= self.decay_to <= 1:
            raise TrainingError(f"decay_to must be in [0, 1], got {self.decay_to}")
        if self.keep_every < 0:
            raise TrainingError(f"keep_every must be 0 (no history) or more, got {self.keep_every}")
        if self.lr is not None and not self.lr > 0:
            raise TrainingError(f"lr must be positive, got {self.lr}")
        if self.zoom_out < 1:
            raise TrainingError(f"zoom_out must be at least 1 (1: crops at the stored scale), got {self.zoom_out}")
        for name in ("old_film", "aged_print"):  # shares of the crops whose input lightness is altered
            if not 0 <= getattr(self, name) <= 1:
                raise TrainingError(f"{name} must be a share in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.balance_folders <= 1:
            raise TrainingError(f"balance_folders must be in [0, 1] (0: the data's own mix), got {self.balance_folders}")
        if not 0 < self.train_share <= 1:
            raise TrainingError(f"train_share must be in (0, 1] (1: every training photo), got {self.train_share}")
        if self.best_metric not in BEST_METRICS:
            raise TrainingError(f"best_metric must be one of {', '.join(BEST_METRICS)}, got {self.best_metric!r}")


def default_workers() -> int:
    """Loader processes: half the cores (at least one), so that the rest compute."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


@dataclass
class Session:
    """How this invocation runs, which is not part of the run: device, loader workers, time limit."""

    device: str | torch.device = "auto"
    workers: int = field(default_factory=default_workers)
    time_limit: float | None = None  # seconds of this session
    log_every: int = 25


@dataclass
class TrainResult:
    """Where a call to `train` ended."""

    folder: RunFolder
    step: int
    stopped_by: str  # "steps", "time limit", "SIGINT", "SIGTERM" or "another process"
    best: dict | None


def load_settings(run_dir) -> RunConfig:
    """The RunConfig recorded in a run folder (for --resume)."""
    folder = RunFolder(run_dir)
    settings = folder.read_settings()
    try:
        return RunConfig(**settings)
    except TypeError as err:
        raise TrainingError(f"{folder.settings}: not the settings of this version ({err})") from None


def train(config: RunConfig, out, *, session: Session | None = None, resume: bool = False, log=None) -> TrainResult:
    """Train `config` into the run folder `out` (continuing it when `resume`); under torchrun, one rank each."""
    session = session or Session()
    device = session.device if isinstance(session.device, torch.device) else resolve_device(session.device)
    processes = distributed.start(device)
    try:
        return _train(config, RunFolder(out), session, resume, processes, log or _log_to_stderr)
    finally:
        # DDP wrappers sit in reference cycles; collected after the group is gone, gloo aborts the process.
        gc.collect()
        distributed.stop()


def _train(config, folder, session, resume, processes, log):
    device = processes.device
    config = _checked_config(config, folder, resume)
    processes.barrier()  # every rank has looked at the folder before the main one writes to it

    torch.manual_seed(config.seed)
    train_set = _open_split(config, "train")
    model = _build_model(config)
    recipe_type = recipe_class(config.model)
    config = replace(config, model_config=asdict(model.config), lr=config.lr or recipe_type.default_lr)
    # Emulated bf16 (a CPU without AVX-512 BF16 or AMX) trained 10x slower than fp32 here, so the
    # default follows the hardware; --amp/--no-amp forces it.
    amp = native_bf16(device) if config.amp is None else config.amp
    # bf16 convolutions are fastest on NHWC (oneDNN, tensor cores): 3x faster than NCHW bf16 on a CPU
    # here; fp32 gains little from it and small fp32 convolutions lose.
    memory_format = torch.channels_last if amp else torch.contiguous_format
    state = folder.load_state(device) if resume else None
    start = _initial_weights(config, device) if state is None and config.init_from else None
    if state is None and start is None:
        try:
            model.init_pretrained()
        except PretrainedWeightsMissing as err:
            raise TrainingError(str(err)) from None
    if start is not None:
        _load_into(model, start["model"], config.init_from, config.model)
        config = replace(config, init_step=start["step"])
    model.to(device, memory_format=memory_format).train()

    if state is not None and state["model_name"] != config.model:
        raise TrainingError(f"{folder.state} holds a {state['model_name']} checkpoint, not {config.model}")
    autocast = functools.partial(torch.autocast, device.type, dtype=torch.bfloat16, enabled=amp)
    needs_prior = recipe_type.needs_ab_prior(model) and state is None
    options = RecipeOptions(
        lr=config.lr, autocast=autocast, warmup_steps=config.warmup_steps, memory_format=memory_format,
        ab_prior=_ab_prior(config, session) if needs_prior else None, lr_scale=_lr_scale(config),
    )
    recipe = recipe_type(model, options)
    if start is not None and start.get("recipe"):
        try:
            recipe.load_networks(start["recipe"])
        except (KeyError, RuntimeError, ValueError) as err:
            raise TrainingError(f"{config.init_from} does not fit this {config.model} recipe ({_first_line(err)})")
    step, elapsed, best, sessions = 0, 0.0, None, []
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            recipe.load_state_dict(state["recipe"])
        except (KeyError, RuntimeError, ValueError) as err:
            raise TrainingError(f"{folder.state} does not fit this {config.model} model ({_first_line(err)})")
        step, elapsed, best, sessions = state["step"], state["elapsed"], state["best"], state["sessions"]
    # Where the starting weights came from, carried by every checkpoint so that cards can say so.
    lineage = start["lineage"] if start is not None else (state or {}).get("lineage", [])
    recipe.distribute(processes.wrap)

    try:  # before the folder is written: a run refused here leaves nothing that blocks its retry
        sampler = StepBatches(
            len(train_set), config.batch_size, seed=config.seed, start_step=step,
            rank=processes.rank, world_size=processes.world_size,
            weights=balance_weights(train_set.folders, config.balance_folders) if config.balance_folders else None,
        )
    except ValueError as err:
        raise TrainingError(str(err)) from None
    validator = _validator(config) if processes.is_main else None
    if processes.is_main:
        folder.write_settings(asdict(config))
        folder.forget_metrics_after(step)
    loader = DataLoader(
        SeededItems(train_set), batch_sampler=sampler, num_workers=session.workers,
        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(config.seed),
    )
    torch.manual_seed(config.seed + processes.rank)  # each rank draws its own dropout masks
    if state is not None:
        _restore_rng(state["rng"], processes, log)

    this_session = _session_record(step, device, processes, session, amp)
    sessions = [*sessions, this_session]
    started = time.monotonic()

    def checkpoint():
        this_session.update(last_step=step, seconds=round(time.monotonic() - started, 1))
        _save(folder, processes, model, recipe, config, {
            "model_name": config.model, "step": step, "elapsed": elapsed + time.monotonic() - started,
            "best": best, "sessions": sessions, "lineage": lineage,
        })

    def validate():
        nonlocal best
        scores, rows = validator.run(model, device)
        model.train()
        folder.append_metrics({"step": step, "split": "val", **_rounded(scores)})
        write_sample_sheet(folder.sample_sheet(step), rows, step)
        folder.plot_metrics()
        improved = best is None or scores[config.best_metric] > best["value"]
        if improved:
            best = {"metric": config.best_metric, "value": scores[config.best_metric], "step": step}
            save_checkpoint(folder.best_weights, model, training=_training_header(config, step), metrics=scores)
        log(f"validation at step {step}: " + _format(scores) + (" (best)" if improved else ""))

    if processes.is_main:
        if validator is not None and step == 0:
            folder.append_metrics({"step": 0, "split": "gray", **_rounded(validator.gray_scores())})
        skipped = f", {train_set.skipped} unreadable file(s) skipped" if train_set.skipped else ""
        for path, cause in train_set.unusable[:NAMED_UNUSABLE]:
            log(f"skipped {path}: {cause}")
        if len(train_set.unusable) > NAMED_UNUSABLE:
            log(f"skipped {len(train_set.unusable) - NAMED_UNUSABLE} more file(s) that would not decode")
        log(
            f"training {config.model} on {len(train_set)} images ({len(validator) if validator else 0} for"
            f" validation{skipped}) into {folder.path}: step {step} -> {config.steps}, batch {config.batch_size}"
            f" x {processes.world_size} process(es), crop {config.crop_size}, {'bf16' if amp else 'fp32'},"
            f" {this_session['hardware']}, {session.workers} loader worker(s)"
        )
    stopped_by, saved_at, validated_at = "steps", step, step
    sums, window_steps, window_start = {}, 0, time.monotonic()
    batches = iter(loader)
    with StopSignals() as signals:
        while step < config.steps:
            batch = _to_device(next(batches), device, memory_format)
            losses = recipe.step(batch, step)
            step += 1
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + value
            window_steps += 1

            over_time = session.time_limit is not None and time.monotonic() - started >= session.time_limit
            reason = signals.reason or ("time limit" if over_time else None)
            stopping = processes.any(reason is not None)

            if step % session.log_every == 0 or step == config.steps or stopping:
                # Losses are this rank's; every rank checks them, so all stop together when one diverges.
                means = {name: float(total) / window_steps for name, total in sums.items()}
                if processes.any(not all(math.isfinite(v) for v in means.values())):
                    raise TrainingError(
                        f"the loss stopped being finite by step {step}; lower --lr, or train with --no-amp"
                    )
                rate = window_steps / (time.monotonic() - window_start)
                if processes.is_main:
                    folder.append_metrics({"step": step, "split": "train", **_rounded(means),
                                           "steps_per_s": round(rate, 3), "lr": recipe.current_lr()})
                    log(f"step {step}/{config.steps}  {_format(means)}  {rate:.2f} steps/s")
                sums, window_steps, window_start = {}, 0, time.monotonic()
            if validator is not None and step % config.val_every == 0:
                validate()
                validated_at = step
            if step % config.save_every == 0 or (config.keep_every and step % config.keep_every == 0):
                checkpoint()
                saved_at = step
            if stopping:
                stopped_by = reason or "another process"
                break

        # A signal asks for a quick exit: save, but skip the final validation.
        if validator is not None and validated_at != step and stopped_by not in ("SIGINT", "SIGTERM"):
            validate()
        if saved_at != step:
            checkpoint()
    if processes.is_main:
        if validated_at != step:  # else validate() has just drawn them
            folder.plot_metrics()
        log(f"stopped at step {step} ({stopped_by}); the run is in {folder.path}")
    return TrainResult(folder, step, stopped_by, best)


def _checked_config(config, folder, resume):
    """`config` checked against the folder; when resuming, completed from the run's recorded settings."""
    if not resume:
        if folder.holds_run():
            raise TrainingError(
                f"{folder.path} already holds a training run; continue it with --resume {folder.path} "
                "or choose another --out"
            )
        return _with_initial_config(config) if config.init_from else config
    recorded = load_settings(folder.path)
    if config.model != recorded.model:
        raise TrainingError(f"{folder.path} holds a {recorded.model} run; it cannot be resumed as {config.model}")
    # Hyper-parameters left out (the default lr, config keys not given) mean "as recorded".
    config = replace(config, lr=config.lr or recorded.lr, model_config={**recorded.model_config, **config.model_config})
    for name in FIXED_ON_RESUME:
        if getattr(config, name) != getattr(recorded, name):
            raise TrainingError(
                f"{folder.path} was trained with {name} {getattr(recorded, name)!r}; a resumed run keeps it "
                f"(got {getattr(config, name)!r})"
            )
    return config


def initial_weights_source(path):
    """(model name, model config) of the weights an --init-from run folder or weights file holds, read from
    its settings or header (the weights themselves are read once, by _initial_weights)."""
    source = Path(path)
    if source.is_dir():
        folder = RunFolder(source)
        try:
            recorded = load_settings(source)
        except RunFolderError as err:
            raise TrainingError(str(err)) from None
        if not folder.state.exists():
            raise TrainingError(f"{source}: the run has no checkpoint (last.pt) to start from yet")
        return recorded.model, recorded.model_config
    try:
        header = read_header(source)
    except (OSError, CheckpointError) as err:
        raise TrainingError(_first_line(err)) from None
    return header["model"], header_config(header)


def _with_initial_config(config):
    """A run started from another run's or file's weights takes their model config (given --config keys
    override it; one that changes the network fails when the weights are loaded)."""
    source = config.init_from
    model_name, model_config = initial_weights_source(source)
    if model_name != config.model:
        raise TrainingError(f"{source} holds {model_name} weights; a {config.model} run cannot start from them")
    return replace(config, model_config={**model_config, **config.model_config})


def _initial_weights(config, device):
    """{"model": state dict, "recipe": the recipe's networks or None, "step": theirs, "lineage": where they
    came from} of --init-from, read safely."""
    source = Path(config.init_from)
    if source.is_dir():
        state = RunFolder(source).load_state(device)
        return {"model": state["model"], "recipe": state["recipe"], "step": state["step"],
                "lineage": run_lineage(source, state)}
    try:
        weights, header = load_checkpoint(source, device)
    except (OSError, CheckpointError) as err:
        raise TrainingError(_first_line(err)) from None
    training = header.get("training") or {}
    step = training.get("steps", training.get("trained_steps"))  # exported files, or a run's own
    lineage = [*training.get("lineage", []), {
        "source": str(source), "step": step, "settings": training.get("run"),
        "sessions": training.get("sessions", []), "seconds": training.get("wall_seconds"),
    }]
    # load_checkpoint rebuilt the model in fp32 whatever the file stores
    return {"model": weights.state_dict(), "recipe": None, "step": step, "lineage": lineage}


def run_lineage(run_dir, state):
    """The runs whose weights led to the one in `run_dir` (as its training `state` holds it), oldest first,
    that run last: each one's folder, step, settings, sessions and seconds, for model cards. A state from
    before lineages were recorded is traced through its run's --init-from folder as that is now."""
    settings = RunFolder(run_dir).read_settings()
    earlier = state.get("lineage") or []
    source = settings.get("init_from")
    if not earlier and source and Path(source).is_dir():
        source_state = RunFolder(source).load_state("cpu")
        earlier = run_lineage(source, source_state) if source_state is not None else []
    return [*earlier, {
        "source": str(run_dir), "step": state["step"], "settings": settings,
        "sessions": state["sessions"], "seconds": round(state["elapsed"], 1),
    }]


def _load_into(model, state_dict, source, model_name):
    """Load --init-from weights; parts the model declares fresh (an added head) may be missing from them."""
    own = model.state_dict()
    missing = [key for key in own if key not in state_dict and key.startswith(model.fresh_parts())]
    try:
        model.load_state_dict({**state_dict, **{key: own[key] for key in missing}})
    except (KeyError, RuntimeError, ValueError) as err:
        raise TrainingError(f"{source} does not fit this {model_name} model ({_first_line(err)})") from None


def _open_split(config, split):
    # Validation stays at the stored scale and on the photos' own lightness.
    # The share thins the training photos only: every run of a learning curve validates on the same ones.
    zoom_out, old_film, aged, share = ((config.zoom_out, config.old_film, config.aged_print, config.train_share)
                                       if split == "train" else (1.0, 0.0, 0.0, 1.0))
    try:
        dataset = open_dataset(config.data, split=split, crop_size=config.crop_size, augment=split == "train",
                               seed=config.seed, zoom_out=zoom_out, old_film=old_film,
                               aged_print=aged, share=share)
    except (OSError, ValueError) as err:
        raise TrainingError(_first_line(err)) from None
    if split == "train" and len(dataset) == 0:
        raise TrainingError(f"{config.data}: no training images found")
    return dataset


def _build_model(config):
    """The model with its config; settings that follow from the run are filled in unless given."""
    values = dict(config.model_config)
    names = {f.name for f in fields(config_class(config.model))}
    if "train_size" in names:
        values.setdefault("train_size", config.crop_size)
    if "num_scenes" in names:
        values.setdefault("num_scenes", num_labels(config.data))
    try:
        model = build_model(config.model, values)
    except (TypeError, ValueError) as err:
        raise TrainingError(f"--config: {_first_line(err)}") from None
    if config.crop_size % model.size_multiple:
        raise TrainingError(
            f"--crop-size {config.crop_size} must be a multiple of {model.size_multiple} for this {config.model} model"
        )
    return model


def _ab_prior(config, session):
    """The dataset's smoothed ab prior: from its stats.json (all its photos), else counted on a sample of the
    run's training crops."""
    prior = load_ab_prior(config.data)
    if prior is not None:
        return prior
    dataset = open_dataset(config.data, split="train", crop_size=config.crop_size, augment=False, seed=config.seed,
                           share=config.train_share)
    step = max(1, len(dataset) // PRIOR_SAMPLE)
    sample = Subset(dataset, range(0, len(dataset), step)[:PRIOR_SAMPLE])
    counts = torch.zeros(313, dtype=torch.float64)
    for batch in DataLoader(sample, batch_size=32, num_workers=session.workers):
        counts += ab_histogram(unit_to_ab(batch["ab"])).double()
    return smoothed_prior(counts).float()


def _validator(config):
    validation_set = _open_split(config, "val")
    return Validator(validation_set) if len(validation_set) else None


def _lr_scale(config):
    """Step -> factor on every learning rate: 1, then from decay_from a straight line to decay_to at the last
    step (index steps - 1).

    A constant rate leaves the weights moving around a minimum; ending lower settles them (the usual last
    stage of a schedule), and a resumed run can add it with --steps and --decay-from.
    """
    if config.decay_from is None:
        return lambda step: 1.0
    span = config.steps - 1 - config.decay_from  # steps are counted from 0: the last one is steps - 1

    def scale(step):
        done = 1.0 if span <= 0 else min((step - config.decay_from) / span, 1.0)
        return 1.0 if step < config.decay_from else 1.0 - done * (1.0 - config.decay_to)

    return scale


def _to_device(batch, device, memory_format):
    return {
        name: value.to(device, non_blocking=True, memory_format=memory_format) if value.dim() == 4
        else value.to(device, non_blocking=True)
        for name, value in batch.items()
    }


def _save(folder, processes, model, recipe, config, progress):
    """Checkpoint on the main rank: training state first, then the weights in the shipped format."""
    fingerprints = processes.gather(_fingerprint(model))
    if len(set(fingerprints)) > 1:
        raise TrainingError(f"the {processes.world_size} training processes hold different weights: {fingerprints}")
    rng = processes.gather(_rng_state(processes.device))
    failure = None
    if processes.is_main:
        try:
            folder.save_state({**progress, "model": model.state_dict(), "recipe": recipe.state_dict(), "rng": rng,
                               "fingerprints": fingerprints})
            save_checkpoint(folder.last_weights, model, training=_training_header(config, progress["step"]))
            if config.keep_every and progress["step"] % config.keep_every == 0:
                # The validation split is small; a history lets a later, larger evaluation choose the step.
                folder.history.mkdir(exist_ok=True)
                save_checkpoint(folder.history_weights(progress["step"]), model,
                                training=_training_header(config, progress["step"]))
        except OSError as err:
            failure = (
                f"could not save the checkpoint in {folder.path} ({err.strerror or err}); "
                f"the previous checkpoint is kept"
            )
    if processes.any(failure is not None):
        raise TrainingError(failure or "the main process could not save the checkpoint")


def _fingerprint(model):
    """Sum of all parameters in float64: equal on every rank when DDP keeps the replicas in step.

    Buffers are left out: BatchNorm statistics are per rank between DDP's broadcasts.
    """
    with torch.no_grad():
        return float(sum(p.double().sum() for p in model.parameters()))


def _rng_state(device):
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng(states, processes, log):
    if len(states) != processes.world_size:
        log(f"note: the run was saved by {len(states)} process(es), not {processes.world_size}; "
            "random numbers and data order continue differently")
        return
    state = states[processes.rank]
    torch.set_rng_state(state["cpu"].cpu())
    if "cuda" in state and processes.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"].cpu(), processes.device)


def _training_header(config, step):
    return {**asdict(config), "trained_steps": step}


def _session_record(step, device, processes, session, amp):
    return {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "first_step": step,
        "last_step": step,
        "seconds": 0.0,
        "hardware": describe_hardware(device, processes.world_size),
        "torch": str(torch.__version__),  # TorchVersion is a class weights_only loading refuses
        "amp": amp,
        "workers": session.workers,
    }


def describe_hardware(device, world_size=1) -> str:
    """A short human description of what trains: GPU names or CPU cores and model."""
    if device.type == "cuda":
        return f"{world_size} x {torch.cuda.get_device_name(device)}"
    return f"{world_size} x CPU ({torch.get_num_threads()} threads, {_cpu_name()})"


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _rounded(values):
    return {name: round(value, 6) for name, value in values.items()}


def _format(values):
    return "  ".join(f"{name} {value:.4g}" for name, value in values.items())


def _first_line(err):
    return (str(err).splitlines() or [type(err).__name__])[0]


def _log_to_stderr(line):
    print(line, file=sys.stderr, flush=True)
