"""Edge-aware chroma upsampling: colour that stays on its side of an edge."""

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from colorize_cli.colour.upsample import (
    guided_coefficients,
    guided_coefficients_with_torch,
    guided_upsample,
)


def _edge_scene(size=256, factor=8):
    """Full-res L with a sharp vertical edge off the low-res grid; true colour differs on each side."""
    edge = size // 2 + 3
    L = torch.full((1, 1, size, size), 30.0)
    L[..., edge:] = 80.0
    ab = torch.zeros(1, 2, size, size)
    ab[:, 0, :, :edge] = 40.0
    ab[:, 1, :, edge:] = -40.0
    low_size = size // factor
    ab_low = F.interpolate(ab, size=(low_size, low_size), mode="area")
    L_low = F.interpolate(L, size=(low_size, low_size), mode="area")
    return L, ab, L_low, ab_low


def test_guided_upsampling_bleeds_less_than_bilinear():
    L, ab_true, L_low, ab_low = _edge_scene()
    guided = guided_upsample(ab_low, L_low / 100, L / 100)
    bilinear = F.interpolate(ab_low, size=L.shape[-2:], mode="bilinear", align_corners=False)
    guided_error = (guided - ab_true).abs().mean()
    bilinear_error = (bilinear - ab_true).abs().mean()
    # Measured: mean error 0.08 (guided) vs 0.60 (bilinear) Lab units; near the edge 0.9 vs 14.5.
    assert guided_error < 0.25 * bilinear_error
    # Within 4 px of the edge, the guided result keeps each side's colour.
    band = slice(256 // 2 + 3 - 4, 256 // 2 + 3 + 4)
    assert (guided[..., band] - ab_true[..., band]).abs().mean() < 0.2 * (bilinear[..., band] - ab_true[..., band]).abs().mean()


def test_constant_chroma_stays_constant_and_size_is_the_guide_size():
    L_full = torch.rand(1, 1, 100, 150)
    L_low = F.interpolate(L_full, size=(25, 37), mode="area")
    ab_low = torch.full((1, 2, 25, 37), 17.0)
    out = guided_upsample(ab_low, L_low, L_full)
    assert out.shape == (1, 2, 100, 150)
    assert (out - 17.0).abs().max() < 1e-3


# --- properties, for any sizes and any guide ---------------------------------------------------------------
# Not a property: staying within the range of ab_low. A guided filter extrapolates ab along L, so a guide with
# detail the working size lacks overshoots (by up to 1.4x the range on noise, 0.3x on smooth guides); the
# colour conversion clips what leaves the gamut. With a flat guide it is a pure smoothing, and stays in range.

_sizes = st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(1, 5), st.integers(0, 4), st.integers(0, 4))


def _scene(sizes, seed, flat_guide=False):
    h, w, factor, extra_h, extra_w = sizes
    generator = torch.Generator().manual_seed(seed)
    height, width = h * factor + extra_h, w * factor + extra_w
    guide_full = torch.full((1, 1, height, width), 0.4) if flat_guide else torch.rand(1, 1, height, width, generator=generator)
    guide_low = F.interpolate(guide_full, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    ab_low = torch.rand(1, 2, h, w, generator=generator, dtype=torch.float32) * 200 - 100
    return ab_low, guide_low, guide_full


@settings(max_examples=25, deadline=None)
@given(_sizes, st.integers(0, 2**31), st.floats(-110, 110))
def test_output_has_the_guide_size_and_constant_chroma_stays_constant(sizes, seed, value):
    ab_low, guide_low, guide_full = _scene(sizes, seed)
    out = guided_upsample(torch.full_like(ab_low, value), guide_low, guide_full)
    assert out.shape == (1, 2, *guide_full.shape[-2:])
    assert (out - value).abs().max() <= 1e-4 * (1 + abs(value))  # float32 box sums


@settings(max_examples=25, deadline=None)
@given(_sizes, st.integers(0, 2**31), st.floats(-2, 2), st.floats(-50, 50))
def test_upsampling_commutes_with_scaling_and_shifting_chroma(sizes, seed, scale, shift):
    ab_low, guide_low, guide_full = _scene(sizes, seed)
    out = guided_upsample(ab_low, guide_low, guide_full)
    moved = guided_upsample(ab_low * scale + shift, guide_low, guide_full)
    assert (moved - (out * scale + shift)).abs().max() < 1e-2


@settings(max_examples=25, deadline=None)
@given(_sizes, st.integers(0, 2**31))
def test_a_flat_guide_keeps_chroma_within_its_range(sizes, seed):
    ab_low, guide_low, guide_full = _scene(sizes, seed, flat_guide=True)
    out = guided_upsample(ab_low, guide_low, guide_full)
    low, high = ab_low.amin(dim=(2, 3), keepdim=True), ab_low.amax(dim=(2, 3), keepdim=True)
    assert (out >= low - 1e-3).all() and (out <= high + 1e-3).all()


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 20), st.integers(1, 20), st.integers(1, 4))
def test_box_sum_by_running_sums_matches_pooling(height, width, radius):
    from colorize_cli.colour.upsample import _box_sum

    x = torch.rand(2, 3, height, width, dtype=torch.float64)
    size = 2 * radius + 1
    total = F.avg_pool2d(F.pad(x, [radius] * 4), size, stride=1, divisor_override=1)
    assert (_box_sum(x, radius) - total).abs().max() < 1e-12


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 40), st.integers(1, 40), st.integers(0, 4), st.integers(0, 2**31 - 1))
def test_the_compiled_fit_is_the_torch_fit(batch, height, width, radius, seed):
    generator = torch.Generator().manual_seed(seed)
    guide = torch.rand(batch, 1, height, width, generator=generator)
    ab = torch.randn(batch, 2, height, width, generator=generator) * 40
    compiled = guided_coefficients(guide, ab, radius=radius)
    reference = guided_coefficients_with_torch(guide, ab, radius=radius)
    for got, expected in zip(compiled, reference):
        assert got.shape == expected.shape and got.dtype == expected.dtype
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-5)
