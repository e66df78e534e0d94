"""The 313 ab bins: Zhang's exact set, soft encoding, annealed-mean decoding, prior and class rebalancing."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from colorize_cli.colour.ab_bins import (
    BIN_WIDTH,
    ab_histogram,
    annealed_mean,
    bin_centers,
    hard_encode,
    rebalance_weights,
    smoothed_prior,
    soft_encode,
)
from colorize_cli.colour.lab import rgb_to_lab

# Zhang et al.'s pts_in_hull.npy, row by row: a -> (first b, last b), every 10 in between.
ZHANG_ROWS = {
    -90: (50, 90), -80: (20, 90), -70: (0, 90), -60: (-20, 90), -50: (-30, 100), -40: (-40, 100),
    -30: (-50, 100), -20: (-50, 100), -10: (-60, 100), 0: (-70, 100), 10: (-80, 90), 20: (-80, 90),
    30: (-90, 90), 40: (-100, 90), 50: (-100, 80), 60: (-110, 80), 70: (-110, 80), 80: (-110, 70),
    90: (-110, 70), 100: (-90, 0),
}


def _gamut_ab(steps: int = 17) -> torch.Tensor:
    """ab [1, 2, 1, N] of an RGB lattice that includes the cube's corners."""
    v = torch.linspace(0, 1, steps)
    return rgb_to_lab(torch.stack(torch.meshgrid(v, v, v, indexing="ij")).reshape(1, 3, 1, -1))[:, 1:]


def _random_in_gamut_ab(n: int = 2000, seed: int = 0) -> torch.Tensor:
    rgb = torch.rand(1, 3, 1, n, generator=torch.Generator().manual_seed(seed))
    return rgb_to_lab(rgb)[:, 1:]


def test_the_derived_bins_are_zhangs_313_in_his_order():
    expected = [(a, b) for a, (lo, hi) in ZHANG_ROWS.items() for b in range(lo, hi + 1, 10)]
    assert len(expected) == 313
    centers = bin_centers()
    assert centers.shape == (313, 2)
    assert centers.dtype == torch.float32
    assert [tuple(p) for p in centers.int().tolist()] == expected
    assert torch.equal(centers, centers.div(BIN_WIDTH).round().mul(BIN_WIDTH))


def test_every_in_gamut_colour_has_all_four_corners_of_its_grid_cell_as_bins():
    ab = _gamut_ab().reshape(2, -1).T
    low = torch.floor(ab / BIN_WIDTH) * BIN_WIDTH
    offsets = BIN_WIDTH * torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    corners = {tuple(p) for p in (low[:, None] + offsets).reshape(-1, 2).int().tolist()}
    assert corners <= {tuple(p) for p in bin_centers().int().tolist()}


def test_every_bin_lies_near_the_srgb_gamut():
    ab = _gamut_ab(33).reshape(2, -1).T
    # measured: the farthest bin, (40, 90), is 14.85 from the nearest sRGB colour
    assert torch.cdist(bin_centers(), ab).amin(dim=1).max() < 1.5 * BIN_WIDTH


def test_soft_encoding_puts_gaussian_weights_on_the_five_nearest_bins():
    ab = _random_in_gamut_ab(500).reshape(1, 2, 20, 25)
    encoded = soft_encode(ab)
    assert encoded.shape == (1, 313, 20, 25)
    assert torch.allclose(encoded.sum(dim=1), torch.ones(1, 20, 25))
    assert ((encoded > 0).sum(dim=1) == 5).all()
    assert torch.equal(encoded.argmax(dim=1), hard_encode(ab))

    centre = bin_centers()[100].view(1, 2, 1, 1)
    weights = soft_encode(centre).flatten()
    # a colour on a centre: its 4 grid neighbours at distance 10 each get exp(-10^2 / (2 * 5^2)) of its weight
    assert weights.argmax() == 100
    ratios = weights.topk(5).values[1:] / weights[100]
    assert ratios.tolist() == pytest.approx([math.exp(-2)] * 4, rel=1e-5)


def test_hard_encoding_picks_the_nearest_centre():
    ab = _random_in_gamut_ab(300).reshape(1, 2, 10, 30)
    index = hard_encode(ab)
    assert index.shape == (1, 10, 30) and index.dtype == torch.long
    brute = torch.cdist(ab.reshape(2, -1).T, bin_centers()).argmin(dim=1)
    assert torch.equal(index.flatten(), brute)


@pytest.mark.parametrize("temperature", [1.0, 0.38])
def test_encode_then_annealed_mean_returns_the_colour_within_a_bin(temperature):
    ab = _random_in_gamut_ab()
    decoded = annealed_mean(torch.log(soft_encode(ab)), temperature)
    # measured max error: 0.70 at T=1, 2.7 at T=0.38
    assert (decoded - ab).norm(dim=1).max() < BIN_WIDTH


def test_temperature_one_is_the_mean_and_a_low_temperature_the_mode():
    probs = torch.zeros(1, 313, 1, 1)
    probs[0, 10], probs[0, 200] = 0.6, 0.4
    logits = probs.clamp_min(1e-12).log()
    centers = bin_centers()
    mean = 0.6 * centers[10] + 0.4 * centers[200]
    assert torch.allclose(annealed_mean(logits, 1.0).flatten(), mean, atol=1e-3)
    assert torch.allclose(annealed_mean(logits, 0.01).flatten(), centers[10], atol=1e-3)
    between = annealed_mean(logits).flatten()  # the default 0.38 lies between the two
    assert (between - centers[10]).norm() < (mean - centers[10]).norm()
    with pytest.raises(ValueError, match="positive"):
        annealed_mean(logits, 0.0)


def test_histogram_counts_every_pixel_in_its_nearest_bin():
    ab = torch.cat([_random_in_gamut_ab(100, seed).reshape(1, 2, 10, 10) for seed in (1, 2)])
    counts = ab_histogram(ab)
    assert counts.shape == (313,) and counts.sum() == 200
    assert torch.equal(counts, torch.bincount(hard_encode(ab).flatten(), minlength=313))


def test_smoothed_prior_is_a_distribution_spread_by_a_gaussian():
    counts = torch.zeros(313, dtype=torch.long)
    counts[100] = 7
    prior = smoothed_prior(counts)
    assert prior.sum().item() == pytest.approx(1.0)
    neighbours = torch.cdist(bin_centers()[100:101], bin_centers()).flatten() == BIN_WIDTH
    assert (prior[neighbours] / prior[100]).tolist() == pytest.approx([math.exp(-2)] * 4, rel=1e-5)
    assert smoothed_prior(ab_histogram(_random_in_gamut_ab())).sum().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="empty"):
        smoothed_prior(torch.zeros(313))


def test_rebalance_weights_have_unit_mean_and_favour_rare_bins():
    prior = smoothed_prior(ab_histogram(_random_in_gamut_ab()))
    weights = rebalance_weights(prior)
    assert (prior * weights).sum().item() == pytest.approx(1.0, abs=1e-5)
    order = prior.argsort()
    assert (weights[order].diff() <= 1e-6).all()  # weights fall as the bins get more common
    assert weights[prior.argmin()] > 1 > weights[prior.argmax()]
    assert torch.allclose(rebalance_weights(prior, lam=1.0), torch.ones(313))


@settings(max_examples=40, deadline=None)
@given(st.tuples(*[st.floats(0, 1)] * 3), st.sampled_from([1.0, 0.38]))
def test_property_in_gamut_colours_survive_encoding(rgb, temperature):
    ab = rgb_to_lab(torch.tensor(rgb, dtype=torch.float64).view(1, 3, 1, 1)).float()[:, 1:]
    decoded = annealed_mean(torch.log(soft_encode(ab)), temperature)
    assert (decoded - ab).norm() < BIN_WIDTH
    assert (bin_centers()[hard_encode(ab).item()] - ab.flatten()).abs().max() <= BIN_WIDTH / 2 + 1e-4
