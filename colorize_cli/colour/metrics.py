"""Colour-quality metrics of one predicted image against its truth, as colorization papers report them.

Images are numpy arrays: sRGB (H,W,3) float in [0,1]; ab (H,W,2) in Lab units.
"""


import numpy as np
import torch
from skimage.metrics import structural_similarity

from colorize_cli.colour.ab_bins import hard_encode

# Thresholds of the cumulative ab error curve, Lab units (Zhang et al. 2016, Fig. 4).
THRESHOLDS = np.arange(151)
# Error histograms have one column per threshold step plus one for errors above the last threshold.
HISTOGRAM_STEPS = len(THRESHOLDS) + 1


def psnr(pred_rgb, true_rgb):
    """PSNR in dB on the 8-bit scale (peak 255); inf for identical images."""
    diff = (np.asarray(pred_rgb, np.float64) - np.asarray(true_rgb, np.float64)) * 255.0
    mse = float(np.mean(diff * diff))
    return float("inf") if mse == 0.0 else 10.0 * np.log10(255.0**2 / mse)


def ssim(pred_rgb, true_rgb):
    """Mean SSIM over the three channels: scikit-image defaults (7x7 uniform window), data range 1. A photo
    under 7 px on a side gets the largest odd window it holds; under 3 px SSIM is undefined (NaN)."""
    window = min(7, *np.shape(true_rgb)[:2])
    window -= 1 - window % 2
    if window < 3:
        return float("nan")
    return float(
        structural_similarity(
            np.asarray(true_rgb, np.float64), np.asarray(pred_rgb, np.float64), channel_axis=-1, data_range=1.0,
            win_size=window,
        )
    )


def ab_errors(pred_ab, true_ab):
    """Per-pixel Euclidean distance in the ab plane."""
    return np.linalg.norm(np.asarray(pred_ab, np.float64) - np.asarray(true_ab, np.float64), axis=-1)


def colour_classes(true_ab):
    """Index of the 313-bin ab class (nearest bin centre) of each pixel, shape (H,W)."""
    ab = torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(true_ab, np.float32), -1, 0)))
    return hard_encode(ab[None])[0].numpy()


def error_histogram(pred_ab, true_ab, classes=None, num_classes=1, weights=None):
    """Pixel counts (or summed weights) by class row and error step column.

    Column t < 151 holds errors in (t-1, t], so the pixels within threshold t are columns 0..t.
    """
    steps = np.minimum(np.ceil(ab_errors(pred_ab, true_ab)), HISTOGRAM_STEPS - 1).astype(np.int64)
    rows = 0 if classes is None else np.asarray(classes, np.int64)
    index = (rows * HISTOGRAM_STEPS + steps).ravel()
    counts = np.bincount(
        index, weights=None if weights is None else np.asarray(weights, np.float64).ravel(),
        minlength=num_classes * HISTOGRAM_STEPS,
    )
    return counts.astype(np.float64).reshape(num_classes, HISTOGRAM_STEPS)


def curve_from_histogram(histogram, class_weights=None):
    """Fraction of (weighted) pixels within each threshold of THRESHOLDS."""
    histogram = np.asarray(histogram, np.float64)
    per_step = histogram.sum(0) if class_weights is None else np.asarray(class_weights, np.float64) @ histogram
    total = per_step.sum()
    return np.cumsum(per_step)[: len(THRESHOLDS)] / total if total > 0 else np.full(len(THRESHOLDS), np.nan)


def curve_auc(fraction):
    """Area under an error curve in percent: the mean fraction over the thresholds 0..150 (perfect = 100)."""
    return 100.0 * float(np.mean(fraction))


def inverse_frequency_weights(class_counts):
    """Class rebalancing of the AuC: weight 1/p for each class present, scaled so that E_p[w] = 1."""
    counts = np.asarray(class_counts, np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    weights[present] = counts.sum() / (counts[present] * present.sum())
    return weights


def ab_error_curve(pred_ab, true_ab, weights=None):
    """(THRESHOLDS, fraction of pixels whose ab error is within each); `weights` (H,W) weigh the pixels."""
    return THRESHOLDS, curve_from_histogram(error_histogram(pred_ab, true_ab, weights=weights))


def ab_auc(pred_ab, true_ab, weights=None):
    """AuC of the cumulative ab error curve in percent (Zhang et al. 2016)."""
    return curve_auc(ab_error_curve(pred_ab, true_ab, weights)[1])


def colourfulness(rgb):
    """Colourfulness M of Hasler and Suesstrunk (2003) on the 0-255 scale."""
    rgb = np.asarray(rgb, np.float64) * 255.0
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = red - green
    yb = 0.5 * (red + green) - blue
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def mean_chroma(ab):
    """Mean chroma sqrt(a^2 + b^2) over the pixels."""
    ab = np.asarray(ab, np.float64)
    return float(np.mean(np.hypot(ab[..., 0], ab[..., 1])))


def chroma_ratio(pred_ab, true_ab):
    """Mean chroma of the prediction over that of the truth: well below 1 means dull or sepia; nan for gray truth."""
    return pooled_chroma_ratio([mean_chroma(pred_ab)], [mean_chroma(true_ab)])


def pooled_chroma_ratio(pred_chromas, true_chromas):
    """The chroma ratio of a set of images from each one's mean chroma: summed prediction over summed truth,
    so that one nearly gray truth cannot swing it as a mean of per-image ratios would; nan for gray truths."""
    true = sum(true_chromas)
    return sum(pred_chromas) / true if true > 0 else float("nan")
