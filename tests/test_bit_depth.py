"""16 bits in, 16 bits out: every 16-bit input keeps its precision from the file to the colorized output."""

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image

from colorize_cli.photos import png16, profiles
from colorize_cli.photos.io import read_image, read_luminance
from tests.test_colorize_command import run

# tifffile's names for LZW, ZSTD and deflate: three of the codecs it reads through imagecodecs.
TIFF_CODECS = ("lzw", "zstd", "zlib")


def gradient16(height=48, width=64):
    """uint16 RGB ramps whose low bytes carry a pattern of their own, which 8 bits would lose."""
    y, x = np.mgrid[0:height, 0:width]
    ramps = np.stack([x / (width - 1), y / (height - 1), (x + y) / (width + height - 2)], axis=-1)
    high = (ramps * 0.8 + 0.1) * 65535 // 256  # clear of black and white
    low = (x * 37 + y * 91) % 256
    return (high * 256 + low[..., None]).astype(np.uint16)


def assert_same_lightness(L_out, L_in, name):
    """L kept to 16-bit precision: the float32 render moves it by < 1e-3 (8-bit output, by 0.08 on average).

    A rare pixel whose predicted colour the render clips to sRGB's gamut moves further (0.12 seen).
    """
    error = np.abs(L_out - L_in)
    assert error.mean() < 0.005 and np.percentile(error, 99) < 0.01, (name, error.mean(), error.max())


def write_16bit_inputs(folder):
    """A 16-bit colour TIFF per codec, a 48-bit PNG and an I;16 gray PNG; returns the RGB they hold."""
    folder.mkdir()
    rgb = gradient16()
    for codec in TIFF_CODECS:
        tifffile.imwrite(folder / f"{codec}.tif", rgb, photometric="rgb", compression=codec)
    (folder / "colour.png").write_bytes(imagecodecs.png_encode(rgb))
    Image.fromarray(rgb[..., 1]).save(folder / "gray.png")  # Pillow writes 16-bit gray (I;16) itself
    return rgb


def test_16bit_inputs_are_read_at_full_depth(tmp_path):
    rgb = write_16bit_inputs(tmp_path / "scans")
    for path in sorted((tmp_path / "scans").iterdir()):
        photo = read_image(path)
        expected = rgb[..., 1] if path.name == "gray.png" else rgb
        assert photo.bit_depth == 16, path.name
        assert np.array_equal(np.round(photo.pixels * 65535), expected), path.name


def test_16bit_inputs_give_16bit_outputs_with_their_lightness(tmp_path, cnn_checkpoint):
    write_16bit_inputs(tmp_path / "scans")

    result = run(tmp_path / "scans", "-o", tmp_path / "out", "--model", cnn_checkpoint)

    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    for source in sorted((tmp_path / "scans").iterdir()):
        output = tmp_path / "out" / source.name  # --format same: TIFF stays TIFF, PNG stays PNG
        if output.suffix == ".png":
            assert png16.bit_depth(output) == 16, source.name  # 48-bit RGB
        else:
            assert tifffile.imread(output).dtype == np.uint16
        L_in, _ = read_luminance(source)
        L_out, photo = read_luminance(output)
        assert photo.bit_depth == 16 and photo.colour, source.name
        assert_same_lightness(L_out, L_in, source.name)


@pytest.mark.parametrize(("fmt", "bits"), [("png", 16), ("tif", 16), ("jpg", 8)])
def test_format_option_keeps_16_bits_where_the_format_holds_them(tmp_path, cnn_checkpoint, fmt, bits):
    scans = tmp_path / "scans"
    scans.mkdir()
    tifffile.imwrite(scans / "scan.tif", gradient16(), photometric="rgb", compression="zlib")

    assert run(scans, "-o", tmp_path / "out", "--model", cnn_checkpoint, "--format", fmt).exit_code == 0

    assert read_image(tmp_path / "out" / f"scan.{fmt}").bit_depth == bits


def test_adobe_rgb_scan_gives_an_srgb_output_with_its_real_lightness(tmp_path, cnn_checkpoint):
    scans = tmp_path / "scans"
    scans.mkdir()
    rgb = gradient16()
    tifffile.imwrite(scans / "scan.tif", rgb, photometric="rgb", compression="lzw",
                     iccprofile=imagecodecs.cms_profile("adobergb"))
    tifffile.imwrite(tmp_path / "untagged.tif", rgb, photometric="rgb")

    result = run(scans, "-o", tmp_path / "out", "--model", cnn_checkpoint)

    assert result.exit_code == 0, result.output
    L_in, L_untagged = read_luminance(scans / "scan.tif")[0], read_luminance(tmp_path / "untagged.tif")[0]
    assert np.abs(L_in - L_untagged).max() > 1  # the profile counts (test_image_io checks L against ImageCms)
    L_out, photo = read_luminance(tmp_path / "out" / "scan.tif")
    assert photo.bit_depth == 16
    assert_same_lightness(L_out, L_in, "scan.tif")
    assert photo.icc_profile == profiles.SRGB_PROFILE  # not the input's Adobe RGB: the pixels are sRGB
