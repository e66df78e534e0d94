"""No model of the zoo returns NaN or infinity for any image size, tiny and thin ones included."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from colorize_cli.colorize.colorizer import Colorizer, NonFiniteColour
from colorize_cli.models import MODEL_NAMES, build_model
from colorize_cli.models.inference_tuning import tune_for_inference

THIN_AND_TINY = [(1, 1), (1, 2), (2, 1), (3, 2000), (2000, 3), (1, 300), (300, 1), (7, 5), (1, 100_000), (100_000, 1)]


def _colorizer(name, precision):
    torch.manual_seed(0)
    return Colorizer(tune_for_inference(build_model(name)), "cpu", precision=precision)


@pytest.fixture(scope="module", params=[(name, precision) for name in MODEL_NAMES for precision in ("auto", "fp32")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def colorizer(request):
    return _colorizer(*request.param)


def _random_l(shape, seed):
    return np.random.default_rng(seed).uniform(0, 100, shape).astype(np.float32)


def _check(colorizer, shape, seed=0):
    L = _random_l(shape, seed)
    low = colorizer.predict_low(torch.from_numpy(L)[None, None])
    assert torch.isfinite(low.ab).all(), shape
    rgb = colorizer.colorize_l(L, bit_depth=8)
    assert rgb.shape == (*shape, 3) and rgb.dtype == np.uint8


@pytest.mark.parametrize("shape", THIN_AND_TINY, ids=lambda s: f"{s[0]}x{s[1]}")
def test_thin_and_tiny_images_get_finite_colour(colorizer, shape):
    # Twice: the NaN this guards against (a 1-px-thin bf16 convolution) came only some of the time.
    _check(colorizer, shape, seed=0)
    _check(colorizer, shape, seed=1)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(height=st.integers(1, 700), width=st.integers(1, 700), seed=st.integers(0, 1000))
def test_any_small_size_gets_finite_colour(colorizer, height, width, seed):
    _check(colorizer, (height, width), seed)


def test_every_working_size_leaves_the_deepest_map_at_least_two_pixels(colorizer):
    multiple = colorizer.model.size_multiple
    for shape in THIN_AND_TINY:
        size = colorizer.working_size(*shape)
        assert min(size) >= 2 * multiple
        assert max(size) <= 16 * colorizer.render_size  # a strip costs no more than a 16:1 panorama


def test_non_finite_network_output_is_one_clear_error_not_a_crash():
    colorizer = _colorizer("cnn", "fp32")
    colorizer.model.register_forward_hook(lambda module, inputs, output: output * float("nan"))
    with pytest.raises(NonFiniteColour, match="non-finite colour at working size 16x16"):
        colorizer.predict_low(torch.full((1, 1, 5, 5), 50.0))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_lightness_is_refused_by_name(bad):
    L = _random_l((8, 9), 1)
    L[3, 4] = bad
    with pytest.raises(ValueError, match="L holds NaN or infinity"):
        _colorizer("cnn", "fp32").colorize_l(L)
