"""The fused full-resolution renderer against the reference path (guided_upsample, then lab_to_rgb), and
the compiled CPU kernel against the torch strips that CUDA runs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from colorize_cli.colour import render as render_module
from colorize_cli.colour.lab import lab_to_rgb, rgb_to_l, rgb_to_lab
from colorize_cli.colour.render import fold_coefficients, render, render_with_torch
from colorize_cli.colour.upsample import guided_coefficients, guided_upsample

RENDERERS = pytest.mark.parametrize("renderer", [render, render_with_torch], ids=["compiled", "torch"])


def _scene(height, width, low=(9, 13), saturation=1.0, seed=7):
    """Full-res L, low-res guide and vivid ab (beyond the gamut in places), and the reference sRGB float64."""
    rng = np.random.default_rng(seed)
    L = torch.from_numpy(rng.uniform(0, 100, (height, width)).astype(np.float32))
    L = F.avg_pool2d(L[None, None], 3, stride=1, padding=1, count_include_pad=False)[0, 0]  # some structure
    guide_low = F.interpolate(L[None, None] / 100, size=low, mode="area")
    ab_low = torch.from_numpy(rng.uniform(-90, 90, (1, 2, *low)).astype(np.float32))
    ab = guided_upsample(ab_low.double(), guide_low.double(), L[None, None].double() / 100) * saturation
    reference = lab_to_rgb(torch.cat([L[None, None].double(), ab], dim=1))[0].permute(1, 2, 0).numpy()
    folded = fold_coefficients(*guided_coefficients(guide_low, ab_low), saturation)
    return L.numpy(), folded, reference


def _photo_scene(height=750, width=1001, working=(192, 256)):
    """skimage's camera upscaled as the full-res L, with the astronaut's real chroma at the working size."""
    camera = torch.from_numpy(data.camera().astype(np.float32))[None, None]
    L = rgb_to_l(F.interpolate(camera.expand(1, 3, -1, -1) / 255, size=(height, width), mode="bilinear", align_corners=False))
    astronaut = torch.from_numpy(data.astronaut().astype(np.float32)).permute(2, 0, 1)[None] / 255
    ab_low = F.interpolate(rgb_to_lab(astronaut)[:, 1:], size=working, mode="area")
    guide_low = F.interpolate(L / 100, size=working, mode="area")
    return L[0, 0].numpy(), fold_coefficients(*guided_coefficients(guide_low, ab_low))


def _assert_8bit_close(out, expected):
    difference = np.abs(out.astype(int) - expected)
    assert out.dtype == np.uint8 and difference.max() <= 1
    # the look-up table only moves pixels that sit within a few hundredths of a code of a rounding edge
    assert (difference > 0).mean() < 0.01


@RENDERERS
@pytest.mark.parametrize("height,width", [(64, 80), (37, 101), (1, 5), (300, 7), (40, 1)])
def test_float_output_matches_the_reference(renderer, height, width, monkeypatch):
    monkeypatch.setattr(render_module, "STRIP_PIXELS", 500)  # the torch path: many strips, an uneven last one
    L, folded, reference = _scene(height, width)
    out = renderer(L, folded)
    assert out.dtype == np.float32 and out.shape == (height, width, 3)
    assert np.abs(out - reference).max() < 2e-4


@RENDERERS
def test_8bit_output_rounds_like_the_reference_but_for_rare_pixels(renderer):
    L, folded, reference = _scene(240, 320, saturation=1.4)
    _assert_8bit_close(renderer(L, folded, bit_depth=8), np.round(reference * 255))


@RENDERERS
def test_16bit_output_matches_the_reference(renderer):
    L, folded, reference = _scene(50, 60)
    out = renderer(L, folded, bit_depth=16)
    assert out.dtype == np.uint16
    assert np.abs(out.astype(int) - np.round(reference * 65535)).max() <= 20  # float32 maths: 3e-4 of range


@RENDERERS
def test_zero_chroma_renders_neutral_gray(renderer):
    L = np.linspace(0, 100, 30 * 40, dtype=np.float32).reshape(30, 40)
    zeros = torch.zeros(1, 2, 5, 6)
    out = renderer(L, fold_coefficients(zeros, zeros), bit_depth=8)
    spread = out.max(axis=2).astype(int) - out.min(axis=2)
    # skimage's rounded matrix and white point tilt neutral by ~1e-5: a rare pixel rounds one code apart
    assert spread.max() <= 1 and (spread > 0).mean() < 0.02
    assert (np.diff(out[..., 1].ravel().astype(int)) >= 0).all()  # lightness order is kept


@pytest.mark.parametrize("height,width,low", [
    (61, 97, (9, 13)),  # odd width
    (1, 257, (9, 13)),  # one row: below the working size
    (211, 1, (9, 13)),  # one column
    (9, 13, (9, 13)),  # the working size itself: the taps land on the planes' own pixels
])
def test_compiled_kernel_matches_the_torch_strips(height, width, low):
    L, folded, _ = _scene(height, width, low=low, saturation=1.4)
    _assert_8bit_close(render(L, folded, 8), render_with_torch(L, folded, 8))
    assert np.abs(render(L, folded, 16).astype(int) - render_with_torch(L, folded, 16)).max() <= 20
    assert np.abs(render(L, folded) - render_with_torch(L, folded)).max() < 2e-4


def test_compiled_kernel_matches_the_torch_strips_on_a_photo():
    L, folded = _photo_scene()
    _assert_8bit_close(render(L, folded, 8), render_with_torch(L, folded, 8))
    assert np.abs(render(L, folded, 16).astype(int) - render_with_torch(L, folded, 16)).max() <= 20


@RENDERERS
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_codes_render_as_their_lightness(renderer, dtype):
    levels = np.iinfo(dtype).max + 1
    gray = torch.linspace(0, 1, levels, dtype=torch.float64).expand(1, 3, 1, levels)
    lightness_of_code = rgb_to_l(gray)[0, 0, 0].float().numpy()
    codes = np.random.default_rng(3).integers(0, levels, (37, 101)).astype(dtype)
    _, folded, _ = _scene(37, 101)
    for bit_depth in (8, 16, None):
        from_codes = renderer(codes, folded, bit_depth, lightness_of_code=lightness_of_code)
        np.testing.assert_array_equal(from_codes, renderer(lightness_of_code[codes], folded, bit_depth))


def test_a_table_too_short_for_the_codes_is_refused():
    _, folded, _ = _scene(4, 5)
    with pytest.raises(ValueError, match="cannot cover uint16 codes"):
        render(np.zeros((4, 5), np.uint16), folded, 8, lightness_of_code=np.zeros(256, np.float32))


def test_non_finite_chroma_renders_black_rather_than_reading_outside_the_tables():
    # NaN fails every comparison of the kernel's clipping, which then takes the tables' first entry
    L, folded, _ = _scene(20, 30)
    folded[:, 0] = float("nan")
    for bit_depth in (8, 16, None):
        assert (render(L, folded, bit_depth) == 0).all()


def test_warm_up_compiles_every_output_type_before_the_first_photo():
    from colorize_cli.colour.render import warm_up
    from colorize_cli.colour.render_kernel import render_pixels

    warm_up("cpu")
    outputs = {str(signature[-1]) for signature in render_pixels.signatures}
    assert {"array(uint8, 3d, C)", "array(uint16, 3d, C)", "array(float32, 3d, C)"} <= outputs
