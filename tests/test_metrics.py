"""The metrics against references: scikit-image, hand-computed AuC steps, the colourfulness formula."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from colorize_cli.colour import metrics
from colorize_cli.colour.ab_bins import bin_centers, hard_encode


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    true = rng.random((24, 32, 3))
    pred = np.clip(true + rng.normal(0, 0.05, true.shape), 0, 1)
    return pred, true


def test_psnr_matches_scikit_image_on_the_8bit_scale(pair):
    pred, true = pair
    assert metrics.psnr(pred, true) == pytest.approx(peak_signal_noise_ratio(true, pred, data_range=1.0))
    assert metrics.psnr(pred * 255, true * 255) != metrics.psnr(pred, true)  # inputs are [0,1], not 0-255
    assert metrics.psnr(true, true) == math.inf


def test_psnr_of_a_one_level_error_everywhere():
    true = np.full((4, 4, 3), 100 / 255)
    assert metrics.psnr(true + 1 / 255, true) == pytest.approx(20 * math.log10(255))


def test_ssim_matches_scikit_image(pair):
    pred, true = pair
    expected = structural_similarity(true, pred, channel_axis=-1, data_range=1.0)
    assert metrics.ssim(pred, true) == pytest.approx(expected)
    assert metrics.ssim(true, true) == pytest.approx(1.0)


def _ab(height=16, width=20, seed=1):
    return np.random.default_rng(seed).uniform(-60, 60, (height, width, 2))


def test_auc_of_a_perfect_prediction_is_100():
    true = _ab()
    thresholds, fraction = metrics.ab_error_curve(true, true)
    assert thresholds.tolist() == list(range(151))
    assert fraction.tolist() == [1.0] * 151
    assert metrics.ab_auc(true, true) == 100.0


def test_auc_of_a_constant_error_is_its_step():
    true = _ab()
    # Error sqrt(18^2 + 24^2) = 30 exactly: pixels are within the thresholds 30..150, 121 of 151.
    pred = true + np.array([18.0, 24.0])
    _, fraction = metrics.ab_error_curve(pred, true)
    assert fraction[:30].tolist() == [0.0] * 30 and fraction[30:].tolist() == [1.0] * 121
    assert metrics.ab_auc(pred, true) == pytest.approx(100 * 121 / 151)
    # 30.5 is within 31..150 only; beyond 150 is never within.
    assert metrics.ab_auc(true + np.array([30.5, 0.0]), true) == pytest.approx(100 * 120 / 151)
    assert metrics.ab_auc(true + np.array([0.0, 151.0]), true) == 0.0


def test_auc_averages_over_pixels():
    true = _ab()
    pred = true.copy()
    pred[:8, :, 0] += 10.0  # half the pixels 10 units off
    assert metrics.ab_auc(pred, true) == pytest.approx(100 * (151 + 141) / 2 / 151)


def _pixels_of_bins(bins, counts):
    centres = bin_centers().numpy()
    return np.concatenate([np.repeat(centres[b][None], n, axis=0) for b, n in zip(bins, counts)])[None]


def test_colour_classes_are_the_nearest_bins():
    ab = np.random.default_rng(2).uniform(-150, 150, (30, 40, 2)).astype(np.float32)
    expected = hard_encode(torch.from_numpy(ab).permute(2, 0, 1)[None])[0].numpy()
    np.testing.assert_array_equal(metrics.colour_classes(ab), expected)


def test_rebalanced_auc_equals_raw_when_all_pixels_share_a_colour():
    true = np.broadcast_to(bin_centers().numpy()[100], (16, 20, 2)).copy()
    pred = _ab()
    classes = metrics.colour_classes(true)
    weights = metrics.inverse_frequency_weights(np.bincount(classes.ravel(), minlength=313))[classes]
    assert metrics.ab_auc(pred, true, weights) == pytest.approx(metrics.ab_auc(pred, true))


def test_rebalancing_gives_each_colour_class_the_same_say():
    # 90 pixels of a common colour predicted exactly, 10 of a rare colour 200 units off.
    true = _pixels_of_bins([40, 200], [90, 10])
    pred = true.copy()
    pred[0, 90:, 0] += 200.0
    classes = metrics.colour_classes(true)
    assert classes[0, :90].tolist() == [40] * 90 and classes[0, 90:].tolist() == [200] * 10
    class_weights = metrics.inverse_frequency_weights(np.bincount(classes.ravel(), minlength=313))
    assert metrics.ab_auc(pred, true) == pytest.approx(90.0)
    assert metrics.ab_auc(pred, true, class_weights[classes]) == pytest.approx(50.0)
    histogram = metrics.error_histogram(pred, true, classes, 313)
    assert metrics.curve_auc(metrics.curve_from_histogram(histogram, class_weights)) == pytest.approx(50.0)


def test_inverse_frequency_weights_have_mean_one_under_the_distribution():
    counts = np.array([0, 5, 15, 80, 0])
    weights = metrics.inverse_frequency_weights(counts)
    assert weights[0] == 0 and weights[-1] == 0
    assert np.dot(counts / counts.sum(), weights) == pytest.approx(1.0)
    assert weights[1] * 5 == pytest.approx(weights[3] * 80)


def _colourfulness_reference(rgb):
    """Hasler and Suesstrunk 2003, eq. (3), written out pixel sum by pixel sum."""
    R, G, B = (rgb[..., i].ravel() * 255.0 for i in range(3))
    rg, yb = R - G, (R + G) / 2.0 - B
    n = rg.size
    mu_rg, mu_yb = rg.sum() / n, yb.sum() / n
    sigma_rg = math.sqrt(((rg - mu_rg) ** 2).sum() / n)
    sigma_yb = math.sqrt(((yb - mu_yb) ** 2).sum() / n)
    return math.sqrt(sigma_rg**2 + sigma_yb**2) + 0.3 * math.sqrt(mu_rg**2 + mu_yb**2)


def test_colourfulness_matches_the_formula(pair):
    pred, _ = pair
    assert metrics.colourfulness(pred) == pytest.approx(_colourfulness_reference(pred))
    assert metrics.colourfulness(np.full((5, 5, 3), 0.4)) == 0.0
    red = np.zeros((5, 5, 3))
    red[..., 0] = 1.0
    assert metrics.colourfulness(red) == pytest.approx(0.3 * math.hypot(255.0, 127.5))


def test_chroma_ratio_detects_dull_predictions():
    true = _ab()
    assert metrics.chroma_ratio(0.5 * true, true) == pytest.approx(0.5)
    assert metrics.mean_chroma(np.full((2, 2, 2), [3.0, 4.0])) == pytest.approx(5.0)
    assert math.isnan(metrics.chroma_ratio(true, np.zeros_like(true)))


def test_ssim_shrinks_its_window_for_small_photos_and_is_undefined_under_3_px():
    rng = np.random.default_rng(5)
    true, pred = rng.random((5, 6, 3)), rng.random((5, 6, 3))
    expected = structural_similarity(true, pred, channel_axis=-1, data_range=1.0, win_size=5)
    assert metrics.ssim(pred, true) == pytest.approx(expected)
    assert np.isnan(metrics.ssim(pred[:2], true[:2]))
