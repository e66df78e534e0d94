"""The torch colour core against skimage: Lab values, round trips, batch shapes, dtypes and gradients."""

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage import color

from colorize_cli.colour.lab import (
    ab_to_unit,
    gray_to_l,
    l_to_gray,
    lab_to_rgb,
    normalize_l,
    rgb_to_l,
    rgb_to_lab,
    unit_to_ab,
)

# Measured max |error| against skimage on _rgb_samples() (4096 pixels with the cube corners):
# float64 L 1.4e-14, ab 1.1e-13 (the same formulas and constants); float32 L 1.5e-5, ab 5.5e-5.
TOLERANCE = {torch.float64: (1e-9, 1e-9), torch.float32: (1e-3, 5e-3)}
# sRGB's rounded thresholds (0.04045 vs 12.92 * 0.0031308 = 0.0404499) leave a 3e-8 seam in the round trip,
# and Lab's (skimage's 0.008856 and 0.2068966 for (6/29)^3 and 6/29) one of 2e-7 in linear light: a dark
# channel beside a brighter one ((0, 0, 0.239) came back with R = 1.7e-6; 10 M random dark pixels gave
# at most 1.68e-6), which sRGB's toe (x12.92) makes 1.7e-6.
ROUND_TRIP_TOLERANCE = 5e-6


def _rgb_samples() -> np.ndarray:
    """64x64 random sRGB pixels, the first row starting with the 8 corners of the gamut cube."""
    rgb = np.random.default_rng(0).random((64, 64, 3))
    rgb[0, :8] = [[r, g, b] for r in (0, 1) for g in (0, 1) for b in (0, 1)]
    return rgb


def _to_torch(hwc: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    return torch.from_numpy(hwc).permute(2, 0, 1).to(dtype)


def _to_numpy(chw: torch.Tensor) -> np.ndarray:
    return chw.permute(1, 2, 0).double().numpy()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_rgb_to_lab_matches_skimage(dtype):
    rgb = _rgb_samples()
    lab = rgb_to_lab(_to_torch(rgb, dtype))
    assert lab.dtype == dtype
    error = np.abs(_to_numpy(lab) - color.rgb2lab(rgb))
    l_tol, ab_tol = TOLERANCE[dtype]
    assert error[..., 0].max() < l_tol
    assert error[..., 1:].max() < ab_tol


@pytest.mark.filterwarnings("ignore:Conversion from CIE-LAB")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lab_to_rgb_matches_skimage_inside_and_outside_the_gamut(dtype):
    rng = np.random.default_rng(1)
    lab = rng.uniform([0, -110, -110], [100, 110, 110], (32, 32, 3))
    lab[0, :8] = color.rgb2lab(_rgb_samples()[0, :8])
    rgb = lab_to_rgb(_to_torch(lab, dtype))
    # measured: 2.3e-15 in float64, 2.7e-6 in float32
    assert np.abs(_to_numpy(rgb) - color.lab2rgb(lab)).max() < (1e-9 if dtype == torch.float64 else 1e-4)
    assert rgb.min() >= 0 and rgb.max() <= 1


def test_lab_to_rgb_without_clip_leaves_out_of_gamut_values():
    saturated_green = torch.tensor([50.0, -120.0, 60.0], dtype=torch.float64).view(3, 1, 1)
    assert lab_to_rgb(saturated_green, clip=False).min() < 0
    assert lab_to_rgb(saturated_green).min() == 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_round_trip_returns_the_rgb(dtype):
    rgb = _to_torch(_rgb_samples(), dtype)
    assert (lab_to_rgb(rgb_to_lab(rgb)) - rgb).abs().max() < (ROUND_TRIP_TOLERANCE if dtype == torch.float64 else 1e-5)


@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 3, 5, 7), (2, 4, 3, 5, 7)])
def test_any_leading_batch_shape_gives_the_per_image_result(shape):
    rgb = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    lab = rgb_to_lab(rgb)
    assert lab.shape == shape
    last_image = rgb.reshape(-1, 3, 5, 7)[-1]
    assert torch.allclose(lab.reshape(-1, 3, 5, 7)[-1], rgb_to_lab(last_image), rtol=0, atol=1e-12)
    assert lab_to_rgb(lab).shape == shape
    assert rgb_to_l(rgb).shape == (*shape[:-3], 1, 5, 7)


def test_gradients_are_finite_everywhere_including_black_and_white():
    rgb = torch.rand(2, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    rgb[0, :, 0, 0] = 0.0
    rgb[0, :, 0, 1] = 1.0
    rgb[0, :, 0, 2] = 0.04045  # the companding threshold
    rgb.requires_grad_(True)
    rgb_to_lab(rgb).sum().backward()
    assert torch.isfinite(rgb.grad).all()
    assert rgb.grad[0, :, 0, 0].abs().sum() > 0  # black still passes a gradient through the linear segment

    lab = torch.stack([torch.zeros(4, 4), torch.full((4, 4), -130.0), torch.full((4, 4), 130.0)])
    lab.requires_grad_(True)
    lab_to_rgb(lab, clip=False).sum().backward()
    assert torch.isfinite(lab.grad).all()


def test_gray_l_is_the_l_of_the_neutral_colour():
    y = torch.linspace(0, 1, 101, dtype=torch.float64)
    neutral = y.view(1, 1, -1).expand(3, 1, -1)
    assert (gray_to_l(y) - rgb_to_l(neutral)[0, 0]).abs().max() < 1e-10
    assert gray_to_l(torch.tensor([0.0, 1.0])).tolist() == pytest.approx([0.0, 100.0], abs=1e-4)
    # l_to_gray inverts it (and agrees with lab_to_rgb of the neutral colour) to the rounding of skimage's
    # constants, well under a 16-bit code
    assert (l_to_gray(gray_to_l(y)) - y).abs().max() < 1e-5
    L = torch.linspace(0, 100, 101, dtype=torch.float64)
    neutral_lab = torch.stack([L, torch.zeros_like(L), torch.zeros_like(L)]).view(3, 1, -1)
    assert (l_to_gray(L) - lab_to_rgb(neutral_lab)[1, 0]).abs().max() < 1e-5


def test_model_scalings():
    assert normalize_l(torch.tensor([0.0, 50.0, 100.0])).tolist() == [-1.0, 0.0, 1.0]
    ab = torch.tensor([-110.0, 0.0, 127.0])
    assert torch.equal(unit_to_ab(ab_to_unit(ab)), ab)
    assert ab_to_unit(torch.tensor(128.0)) == 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_with_the_cpu_result():
    rgb = torch.rand(2, 3, 8, 8)
    assert (rgb_to_lab(rgb.cuda()).cpu() - rgb_to_lab(rgb)).abs().max() < 1e-3


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, (4, 4, 3), elements=st.floats(0, 1)))
@example(np.pad(np.array([[[0.0, 0.0, 0.23918693]]]), ((0, 3), (0, 3), (0, 0))))  # Lab's knee seam, found once
def test_property_lab_round_trip_over_the_srgb_gamut(rgb):
    lab = rgb_to_lab(_to_torch(rgb))
    assert np.abs(_to_numpy(lab) - color.rgb2lab(rgb)).max() < 1e-9
    assert np.abs(_to_numpy(lab_to_rgb(lab)) - rgb).max() < ROUND_TRIP_TOLERANCE
