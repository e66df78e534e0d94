"""The fused full-resolution renderer against the reference path: guided_upsample, then lab_to_rgb."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from colorize_cli.colour import render as render_module
from colorize_cli.colour.lab import lab_to_rgb
from colorize_cli.colour.render import fold_coefficients, render
from colorize_cli.colour.upsample import guided_coefficients, guided_upsample

RNG = np.random.default_rng(7)


def _scene(height, width, low=(9, 13), saturation=1.0):
    """Full-res L, low-res guide and vivid ab (beyond the gamut in places), and the reference sRGB float64."""
    L = torch.from_numpy(RNG.uniform(0, 100, (height, width)).astype(np.float32))
    L = F.avg_pool2d(L[None, None], 3, stride=1, padding=1, count_include_pad=False)[0, 0]  # some structure
    guide_low = F.interpolate(L[None, None] / 100, size=low, mode="area")
    ab_low = torch.from_numpy(RNG.uniform(-90, 90, (1, 2, *low)).astype(np.float32))
    ab = guided_upsample(ab_low.double(), guide_low.double(), L[None, None].double() / 100) * saturation
    reference = lab_to_rgb(torch.cat([L[None, None].double(), ab], dim=1))[0].permute(1, 2, 0).numpy()
    folded = fold_coefficients(*guided_coefficients(guide_low, ab_low), saturation)
    return L.numpy(), folded, reference


@pytest.mark.parametrize("height,width", [(64, 80), (37, 101), (1, 5), (300, 7)])
def test_float_output_matches_the_reference(height, width, monkeypatch):
    monkeypatch.setattr(render_module, "STRIP_PIXELS", 500)  # many strips, an uneven last one
    L, folded, reference = _scene(height, width)
    out = render(L, folded)
    assert out.dtype == np.float32 and out.shape == (height, width, 3)
    assert np.abs(out - reference).max() < 2e-4


def test_8bit_output_rounds_like_the_reference_but_for_rare_pixels():
    L, folded, reference = _scene(240, 320, saturation=1.4)
    out = render(L, folded, bit_depth=8)
    expected = np.round(reference * 255).astype(int)
    difference = np.abs(out.astype(int) - expected)
    assert out.dtype == np.uint8 and difference.max() <= 1
    # the look-up table only moves pixels that sit within a few hundredths of a code of a rounding edge
    assert (difference > 0).mean() < 0.01


def test_16bit_output_matches_the_reference():
    L, folded, reference = _scene(50, 60)
    out = render(L, folded, bit_depth=16)
    assert out.dtype == np.uint16
    assert np.abs(out.astype(int) - np.round(reference * 65535)).max() <= 20  # float32 maths: 3e-4 of range


def test_zero_chroma_renders_neutral_gray():
    L = np.linspace(0, 100, 30 * 40, dtype=np.float32).reshape(30, 40)
    zeros = torch.zeros(1, 2, 5, 6)
    out = render(L, fold_coefficients(zeros, zeros), bit_depth=8)
    spread = out.max(axis=2).astype(int) - out.min(axis=2)
    # skimage's rounded matrix and white point tilt neutral by ~1e-5: a rare pixel rounds one code apart
    assert spread.max() <= 1 and (spread > 0).mean() < 0.02
    assert (np.diff(out[..., 1].ravel().astype(int)) >= 0).all()  # lightness order is kept
