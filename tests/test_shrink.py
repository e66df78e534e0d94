"""The working-size input straight from codes (colour.shrink_kernel) against torch's antialiased resize,
and the batch's codes path (photos.io.read_lightness, Colorizer.colorize_lightness) against the float path."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from colorize_cli.colorize.colorizer import Colorizer
from colorize_cli.colour.shrink_kernel import shrink_lightness, triangle_taps, warm_up
from colorize_cli.photos import io as image_io
from colorize_cli.photos.lightness import Lightness
from tests.conftest import small_photo


def torch_shrink(L, size):
    return F.interpolate(torch.from_numpy(L)[None, None], size=size, mode="bilinear", antialias=True,
                         align_corners=False)[0, 0].numpy()


SHAPES = [
    ((1500, 2000), (224, 288)),  # a 3 MP photo at the gan's working size
    ((97, 131), (64, 96)),  # odd sizes, fractional scales
    ((37, 5), (37, 5)),  # unchanged: the identity
    ((300, 7), (64, 2)),  # thin
    ((1, 900), (1, 64)),  # one row
    ((900, 1), (64, 1)),  # one column
]


def pillow_shrink(L, size):
    return np.asarray(Image.fromarray(L, mode="F").resize(size[::-1], Image.BILINEAR))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("shape,size", SHAPES)
def test_shrinking_codes_is_pillows_triangle_filter_of_their_lightness(dtype, shape, size):
    rng = np.random.default_rng(shape[0])
    table = image_io._code_tables(np.dtype(dtype).str)[1]
    codes = rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)

    from_codes = shrink_lightness(codes, size, table)
    from_floats = shrink_lightness(table[codes], size)

    assert from_codes.shape == size and from_codes.dtype == np.float32
    assert np.abs(from_codes - pillow_shrink(table[codes], size)).max() < 1e-4  # L* units (0-100)
    np.testing.assert_array_equal(from_codes, from_floats)


@pytest.mark.parametrize("shape,size", SHAPES[:4])
def test_shrinking_is_what_predict_low_gets_from_torch(shape, size):
    # torch's antialiased resize is Pillow's filter too (it gets a 900 x 1 column wrong, which the
    # working size never asks of it: a map is at least two multiples wide)
    L = np.random.default_rng(2).uniform(0, 100, shape).astype(np.float32)
    assert np.abs(shrink_lightness(L, size) - torch_shrink(L, size)).max() < 2e-3


def test_an_unchanged_size_is_exactly_the_lightness():
    L = np.random.default_rng(1).uniform(0, 100, (37, 5)).astype(np.float32)
    np.testing.assert_array_equal(shrink_lightness(L, L.shape), L)


def test_taps_weigh_one_in_all_and_stay_inside_the_source():
    for source, size in [(2000, 288), (131, 96), (7, 2), (5, 5)]:
        first, count, weights = triangle_taps(source, size)
        np.testing.assert_allclose(weights.sum(axis=1), 1, rtol=1e-6)
        assert first.min() >= 0 and (first + count).max() <= source
        assert (weights[np.arange(weights.shape[1]) >= count[:, None]] == 0).all()


def test_enlarging_and_short_tables_are_refused():
    with pytest.raises(ValueError, match="enlarge"):
        shrink_lightness(np.zeros((4, 4), np.float32), (8, 4))
    with pytest.raises(ValueError, match="cannot cover"):
        shrink_lightness(np.zeros((4, 4), np.uint16), (2, 2), np.zeros(256, np.float32))


def test_warm_up_compiles_codes_and_floats():
    from colorize_cli.colour.shrink_kernel import _shrink

    warm_up()
    sources = {str(signature[0]) for signature in _shrink.signatures}
    assert {"readonly array(uint8, 2d, C)", "readonly array(uint16, 2d, C)", "array(float32, 2d, C)"} <= sources


def _save(tmp_path, name, pixels, **options):
    path = tmp_path / name
    Image.fromarray(pixels).save(path, **options)
    return path


def test_a_gray_photo_is_read_as_its_codes_and_others_as_floats(tmp_path):
    gray = (small_photo("astronaut") @ [0.299, 0.587, 0.114]).astype(np.uint8)
    stored = _save(tmp_path, "gray.png", gray)
    exif = Image.Exif()
    exif[0x0112] = 6  # turned: the tiled float look-up
    turned = _save(tmp_path, "turned.jpg", gray, exif=exif.tobytes())
    colour = _save(tmp_path, "colour.png", small_photo("astronaut"))

    for path, codes in ((stored, True), (turned, False), (colour, False)):
        lightness, photo = image_io.read_lightness(path)
        L, _ = image_io.read_luminance(path)
        assert (lightness.lightness_of_code is not None) == codes, path.name
        if codes:
            assert lightness.samples.dtype == np.uint8 and not lightness.samples.flags.writeable
        np.testing.assert_array_equal(lightness.values(), L)
        assert photo.bit_depth == 8


@pytest.mark.parametrize("bits", [8, 16])
def test_codes_colour_as_their_float_lightness_does(cnn_checkpoint, bits):
    """The batch's codes path gives the pixels of the documented float path (colorize_l of read_luminance)."""
    gray = (small_photo("astronaut", (300, 420)) @ [0.299, 0.587, 0.114]).astype(np.float64) / 255
    codes = np.round(gray * (2**bits - 1)).astype(np.uint8 if bits == 8 else np.uint16)
    table = image_io._code_tables(codes.dtype.str)[1]
    colorizer = Colorizer.from_checkpoint(cnn_checkpoint, "cpu", render_size=64)

    from_codes = colorizer.colorize_lightness(Lightness(codes, table), bit_depth=bits)
    floats = table[codes]
    low = colorizer.predict_low(torch.from_numpy(floats)[None, None]).split()[0]  # torch's resize
    from_floats = colorizer.colorize_l(floats, bit_depth=bits, low=low)

    difference = np.abs(from_codes.astype(np.int64) - from_floats)
    assert difference.max() <= (1 if bits == 8 else 32)
    assert (difference > 0).mean() < (0.01 if bits == 8 else 0.2)


def test_a_gray_jpeg_is_decoded_straight_into_the_callers_buffer_as_pillow_decodes_it(tmp_path):
    gray = (small_photo("astronaut", (301, 403)) @ [0.299, 0.587, 0.114]).astype(np.uint8)
    stored_gray = _save(tmp_path, "gray.jpg", gray, quality=90)
    in_colour = _save(tmp_path, "in_colour.jpg", np.repeat(gray[..., None], 3, axis=2), quality=90)
    progressive = _save(tmp_path, "progressive.jpg", gray, quality=90, progressive=True)
    for path in (stored_gray, in_colour, progressive):
        buffers = []

        def allocate(shape, dtype, buffers=buffers):
            buffers.append(np.empty(shape, dtype))
            return buffers[-1]

        lightness, _ = image_io.read_lightness(path, allocate_codes=allocate)
        with Image.open(path) as im:
            im.draft("L", im.size)
            expected = np.asarray(im)
        np.testing.assert_array_equal(lightness.samples, expected)
        assert len(buffers) == 1 and np.shares_memory(lightness.samples, buffers[0]), path.name


def test_a_truncated_gray_jpeg_is_still_reported_as_truncated(tmp_path):
    gray = (small_photo("astronaut", (301, 403)) @ [0.299, 0.587, 0.114]).astype(np.uint8)
    whole = _save(tmp_path, "gray.jpg", gray, quality=90).read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole[: len(whole) * 2 // 3])  # libjpeg alone would fill the rest with gray
    with pytest.raises(image_io.ImageReadError, match="truncated"):
        image_io.read_lightness(cut)
