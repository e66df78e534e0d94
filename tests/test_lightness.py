"""L* from integer codes (the compiled per-code look-ups) against skimage's rgb2lab, in every layout a
decoded photo arrives in: stored order and the strided views that EXIF orientation makes."""

import numpy as np
import pytest
from skimage.color import rgb2lab

from colorize_cli.photos import io as image_io
from colorize_cli.photos import lightness

VIEWS = {
    "stored": lambda a: a,
    "rotated 90": lambda a: a.swapaxes(0, 1)[:, ::-1],
    "flipped": lambda a: a[::-1, ::-1],
    "crop": lambda a: a[3:-2, 5:-1],
}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("view", VIEWS)
def test_lightness_of_codes_is_skimages_l_star(dtype, channels, view):
    rng = np.random.default_rng(channels)
    top = np.iinfo(dtype).max
    samples = VIEWS[view](rng.integers(0, top + 1, (67, 130, channels)).astype(dtype))  # odd sizes: partial tiles
    rgb = np.repeat(samples, 3, axis=2) if channels == 1 else samples
    expected = rgb2lab(rgb.astype(np.float64) / top)[..., 0]

    got = image_io._lightness_of_codes(samples)

    assert got.dtype == np.float32 and got.shape == samples.shape[:2] and got.flags.c_contiguous
    assert np.abs(got - expected).max() < 2e-3


def test_extreme_codes_and_the_dark_linear_segment():
    codes = np.array([[[0, 0, 0], [255, 255, 255], [1, 1, 1], [0, 0, 255], [255, 0, 0], [3, 2, 1]]], np.uint8)
    expected = rgb2lab(codes / 255.0)[..., 0]
    assert np.abs(image_io._lightness_of_codes(codes) - expected).max() < 2e-3


def test_tables_that_cannot_cover_the_codes_are_refused():
    linear, table = image_io._code_tables(np.dtype(np.uint8).str)
    with pytest.raises(ValueError, match="cannot cover uint16"):
        lightness.lightness_of_codes(np.zeros((2, 2, 1), np.uint16), linear, table, image_io._SRGB_TO_Y,
                                     image_io._lightness_table())
