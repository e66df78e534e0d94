"""Validation during training: fixed held-out crops, colored through the same Colorizer users get."""

import numpy as np
import torch

from colorize_cli.colorize.colorizer import Colorizer
from colorize_cli.colour import metrics
from colorize_cli.colour.lab import L_CENTER, L_RANGE, lab_to_rgb, unit_to_ab
from colorize_cli.evaluate.plots import image_grid

# Higher is better for each of them, so "best" needs no direction.
BEST_METRICS = ("auc", "psnr", "colourfulness")
# Images scored per validation, and the first few of them shown on the sample sheet.
VALIDATION_IMAGES = 64
SHEET_IMAGES = 8
_BATCH = 16


class Validator:
    """Scores a model on the first `count` items of a validation dataset (centre crops, no augmentation)."""

    def __init__(self, dataset, count=VALIDATION_IMAGES):
        items = [dataset[i] for i in range(min(count, len(dataset)))]
        if not items:
            raise ValueError("no validation images")
        self.L = torch.stack([item["l"] for item in items]) * L_RANGE + L_CENTER
        self.ab = unit_to_ab(torch.stack([item["ab"] for item in items]))
        self.truth = self._rgb(self.ab)
        self.gray = self._rgb(torch.zeros_like(self.ab))

    def __len__(self):
        return len(self.L)

    def gray_scores(self) -> dict[str, float]:
        """The metrics of leaving the images gray: the baseline every model must beat."""
        return self._scores(torch.zeros_like(self.ab), self.gray)

    def run(self, model, device) -> tuple[dict[str, float], list[list[np.ndarray]]]:
        """Mean metrics of `model` over the images, and the sample sheet's rows (gray, prediction, truth)."""
        colorizer = Colorizer(model, device, render_size=self.L.shape[-1])
        predicted = torch.cat([colorizer.predict_ab(L).cpu() for L in self.L.split(_BATCH)])
        rgb = self._rgb(predicted)
        rows = [images[:SHEET_IMAGES] for images in (self.gray, rgb, self.truth)]
        return self._scores(predicted, rgb), rows

    def _rgb(self, ab):
        return _to_numpy(lab_to_rgb(torch.cat([self.L, ab], dim=1)))

    def _scores(self, ab, rgb):
        pred_ab, true_ab = _to_numpy(ab), _to_numpy(self.ab)
        scores = {
            "psnr": [metrics.psnr(p, t) for p, t in zip(rgb, self.truth)],
            "auc": [metrics.ab_auc(p, t) for p, t in zip(pred_ab, true_ab)],
            "colourfulness": [metrics.colourfulness(p) for p in rgb],
            "colourfulness_truth": [metrics.colourfulness(t) for t in self.truth],
        }
        means = {name: _mean(values) for name, values in scores.items()}
        # As `colorize evaluate` reports it (a mean of per-crop ratios swung to 14 on one nearly gray crop).
        means["chroma_ratio"] = metrics.pooled_chroma_ratio(map(metrics.mean_chroma, pred_ab),
                                                            map(metrics.mean_chroma, true_ab))
        return means


def write_sample_sheet(path, rows, step):
    """The sample sheet PNG: gray input, prediction at `step`, truth."""
    image_grid(path, rows, row_labels=["gray", f"step {step}", "truth"])


def _mean(values):
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _to_numpy(images):
    """[B,C,H,W] tensor to a list of (H,W,C) float arrays."""
    return list(images.permute(0, 2, 3, 1).float().numpy())
