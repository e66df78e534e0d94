"""The files of one training run, and how they are written: atomically, so a kill or a full disk leaves
the previous version in place.

    run.json           the run's settings (what --resume restores)
    last.pt            training state: weights, optimizers, step, RNG (torch.save, loaded weights_only)
    last.safetensors   latest weights in the shipped format; best.safetensors: best by the chosen metric
    metrics.jsonl      one JSON object per log or validation; loss.png and validation.png plot them
    history/           with --keep-every: step_NNNNNNN.safetensors, weights kept for choosing a step later
    samples/           a sample sheet per validation
"""

import json
import warnings
from pathlib import Path

import torch

from colorize_cli.evaluate.plots import line_plot
from colorize_cli.photos.fsutil import atomic_write

STATE_FORMAT = "colorize-train-state/1"


class RunFolderError(ValueError):
    """A run folder that cannot be used; one line naming the file and the cause."""


class RunFolder:
    """Paths and readers/writers of a run folder."""

    def __init__(self, path):
        self.path = Path(path)
        self.settings = self.path / "run.json"
        self.state = self.path / "last.pt"
        self.last_weights = self.path / "last.safetensors"
        self.best_weights = self.path / "best.safetensors"
        self.metrics = self.path / "metrics.jsonl"
        self.loss_plot = self.path / "loss.png"
        self.validation_plot = self.path / "validation.png"
        self.samples = self.path / "samples"
        self.history = self.path / "history"

    def holds_run(self) -> bool:
        return self.settings.exists() or self.state.exists()

    def sample_sheet(self, step: int) -> Path:
        """Path of the sample sheet of `step` (its folder created)."""
        self.samples.mkdir(parents=True, exist_ok=True)
        return self.samples / f"step_{step:07d}.png"

    def history_weights(self, step: int) -> Path:
        """Path of the kept weights of `step` (see --keep-every)."""
        return self.history / f"step_{step:07d}.safetensors"

    def kept_steps(self) -> list[int]:
        """Steps whose weights the history keeps, in order."""
        if not self.history.is_dir():
            return []
        return sorted(int(p.stem[5:]) for p in self.history.glob("step_*.safetensors") if p.stem[5:].isdigit())

    def read_settings(self) -> dict:
        if not self.settings.is_file():
            raise RunFolderError(f"{self.path}: not a training run (no {self.settings.name})")
        try:
            return json.loads(self.settings.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise RunFolderError(f"{self.settings}: unreadable run settings ({err})") from None

    def write_settings(self, settings: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.settings) as tmp:
            Path(tmp).write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")

    def save_state(self, state: dict) -> None:
        """Write the training state (tensors in plain containers) atomically."""
        with atomic_write(self.state) as tmp:
            torch.save({"format": STATE_FORMAT, **state}, tmp)

    def load_state(self, device) -> dict | None:
        """The training state, or None before the first checkpoint; never unpickles objects."""
        if not self.state.exists():
            return None
        try:
            with warnings.catch_warnings():  # torch's note on an unusual pickle protocol would precede our line
                warnings.simplefilter("ignore", UserWarning)
                state = torch.load(self.state, map_location=device, weights_only=True)
        except Exception as err:  # noqa: BLE001 (torch raises KeyError, RuntimeError, ... for damaged files)
            raise RunFolderError(f"{self.state}: damaged, or not a training state ({_load_failure(err)})") from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise RunFolderError(f"{self.state}: not a colorize training state")
        return state

    def append_metrics(self, record: dict) -> None:
        with self.metrics.open("a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")

    def read_metrics(self) -> list[dict]:
        if not self.metrics.exists():
            return []
        return [json.loads(line) for line in self.metrics.read_text().splitlines() if line.strip()]

    def forget_metrics_after(self, step: int) -> None:
        """Drop records past `step`: a resumed run redoes those steps and logs them again."""
        kept = [record for record in self.read_metrics() if record["step"] <= step]
        with atomic_write(self.metrics) as tmp:
            Path(tmp).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))

    def plot_metrics(self) -> None:
        """Redraw loss.png and validation.png from metrics.jsonl."""
        records = self.read_metrics()
        for split, path, ylabel in (("train", self.loss_plot, "loss"), ("val", self.validation_plot, "value")):
            series = _series([r for r in records if r["split"] == split])
            if len(series) > 1:
                # With its parts plotted, the total (gan: adversarial + 100 L1) would only squash their scale.
                series.pop("loss", None)
            if series:
                title = "training losses" if split == "train" else "validation metrics"
                line_plot(path, series, xlabel="step", ylabel=ylabel, title=title)


def _series(records):
    """{name: (steps, values)} for every numeric field of the records but the bookkeeping ones."""
    series = {}
    for record in records:
        for name, value in record.items():
            if name in ("step", "split", "elapsed", "steps_per_s") or not isinstance(value, (int, float)):
                continue
            steps, values = series.setdefault(name, ([], []))
            steps.append(record["step"])
            values.append(value)
    return series


def _load_failure(err: Exception) -> str:
    """torch.load's error in a few words: a weights_only refusal buries its reason among advice lines
    (after 'WeightsUnpickler error:', on its line or the next), miniz errors go on for sentences."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [""]
    if not lines[0].startswith("Weights only load failed"):
        return f"{type(err).__name__}: {lines[0].split('. ')[0]}"
    marker = "WeightsUnpickler error:"
    details = []
    for index, line in enumerate(lines):
        if marker in line:
            details = [line.split(marker, 1)[1].strip(), *lines[index + 1 : index + 2]]
            break
    else:  # a refused global, said on its own line between the advice
        details = [line for line in lines[1:] if not line.startswith(("(", "Please", "Check the documentation"))]
    reason = next((detail for detail in details if detail), "not plain tensors").split(". ")[0].rstrip(".")
    return f"{type(err).__name__}: refused to unpickle it: {reason}"
