"""Image I/O: every kind of input becomes upright [0, 1] pixels; writes are atomic and keep metadata."""

import hashlib
import pickle
import struct
import warnings
import zlib
from io import BytesIO

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import ExifTags, Image, ImageCms, ImageOps, PngImagePlugin, UnidentifiedImageError
from skimage import color, data

from colorize_cli.photos import io as image_io
from colorize_cli.photos import png16, profiles
from colorize_cli.photos.fsutil import atomic_write
from colorize_cli.photos.io import (
    ImageReadError,
    read_image,
    read_luminance,
    write_image,
)

SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
ADOBE_RGB_ICC = imagecodecs.cms_profile("adobergb")
# ProPhoto's primaries and D50 white with a plain 1.8 gamma (its real curve has a short linear toe).
PROPHOTO_ICC = imagecodecs.cms_profile(
    "rgb", whitepoint=[0.3457, 0.3585, 1], primaries=[0.7347, 0.2653, 1, 0.1596, 0.8404, 1, 0.0366, 0.0001, 1],
    gamma=1.8,
)
RNG = np.random.default_rng(7)


def exif_with(**tags):
    exif = Image.Exif()
    for name, value in tags.items():
        exif[ExifTags.Base[name]] = value
    return exif


def exif_of(raw):
    exif = Image.Exif()
    exif.load(raw)
    return exif


def opened(path, read):
    with Image.open(path) as im:
        return read(im)


def as_uint(pixels, top):
    return np.round(pixels * top).astype(np.int64)


def srgb_by_imagecms(rgb, icc):
    """8-bit RGB under the profile `icc`, converted to sRGB by Pillow's ImageCms (relative colorimetric)."""
    converted = ImageCms.profileToProfile(
        Image.fromarray(rgb), ImageCms.ImageCmsProfile(BytesIO(icc)), ImageCms.createProfile("sRGB"),
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
    )
    return np.asarray(converted)


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_png16_rgb(path, rgb):
    """A 16-bit RGB PNG, written by hand: Pillow cannot write one."""
    height, width, _ = rgb.shape
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in rgb)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    chunks = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)


# --- reading: modes -----------------------------------------------------------------------------------


def test_gray_png_and_jpeg_stay_two_dimensional(tmp_path):
    gray = data.camera()[::16, ::16]
    Image.fromarray(gray).save(tmp_path / "g.png")
    Image.fromarray(gray).save(tmp_path / "g.jpg", quality=95)

    png, jpeg = read_image(tmp_path / "g.png"), read_image(tmp_path / "g.jpg")

    assert png.pixels.shape == jpeg.pixels.shape == gray.shape
    assert png.pixels.dtype == np.float32 and (png.bit_depth, png.format) == (8, "PNG")
    assert np.array_equal(as_uint(png.pixels, 255), gray)
    assert jpeg.format == "JPEG" and np.abs(jpeg.pixels - gray / 255).mean() < 0.02


def test_bilevel_becomes_gray(tmp_path):
    bilevel = Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).convert("1")
    bilevel.save(tmp_path / "b.png")
    bilevel.save(tmp_path / "b.tif")  # tifffile's path
    bilevel.save(tmp_path / "g4.tif", compression="group4")  # Pillow's path
    for name in ("b.png", "b.tif", "g4.tif"):
        assert np.array_equal(read_image(tmp_path / name).pixels, [[0, 1], [1, 0]])


def test_gray_palette_becomes_gray_and_colour_palette_rgb(tmp_path):
    indices = np.array([[0, 1], [2, 3]], np.uint8)
    gray = Image.fromarray(indices, "P")
    gray.putpalette([0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255])
    gray.save(tmp_path / "gray.png")
    colour = Image.fromarray(indices, "P")
    colour.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])
    colour.save(tmp_path / "colour.gif")

    assert np.array_equal(as_uint(read_image(tmp_path / "gray.png").pixels, 255), [[0, 85], [170, 255]])
    photo = read_image(tmp_path / "colour.gif")
    assert photo.format == "GIF"
    assert np.array_equal(as_uint(photo.pixels, 255), [[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]])


def test_alpha_is_composited_on_white(tmp_path):
    rgba = np.array([[[200, 100, 0, 255], [200, 100, 0, 0]], [[200, 100, 0, 51], [0, 0, 0, 0]]], np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    palette = Image.fromarray(np.array([[0, 1]], np.uint8), "P")
    palette.putpalette([50, 50, 50, 60, 60, 60])
    palette.info["transparency"] = 1
    palette.save(tmp_path / "p.png")

    pixels = read_image(tmp_path / "a.png").pixels
    assert np.allclose(pixels[0, 0], [200 / 255, 100 / 255, 0])
    assert np.allclose(pixels[0, 1], 1) and np.allclose(pixels[1, 1], 1)
    assert np.allclose(pixels[1, 0], 0.2 * rgba[1, 0, :3] / 255 + 0.8)
    assert np.allclose(read_image(tmp_path / "p.png").pixels, [[50 / 255, 1]])


def test_cmyk_jpeg_becomes_rgb_and_says_it_drops_its_cmyk_profile(tmp_path):
    cmyk_icc = SRGB_ICC[:16] + b"CMYK" + SRGB_ICC[20:]
    cmyk = Image.fromarray(RNG.integers(0, 256, (8, 6, 4), dtype=np.uint8), "CMYK")
    cmyk.save(tmp_path / "c.jpg", icc_profile=cmyk_icc)

    with pytest.warns(UserWarning, match="c.jpg: its CMYK ICC profile is not applied"):
        photo = read_image(tmp_path / "c.jpg")

    pillow_rgb = opened(tmp_path / "c.jpg", lambda im: np.asarray(im.convert("RGB")))
    assert photo.pixels.shape == (8, 6, 3) and photo.icc_profile is None
    assert np.array_equal(as_uint(photo.pixels, 255), pillow_rgb)


def test_srgb_and_gray_profiles_are_returned_with_the_pixels_unchanged(tmp_path):
    rgb = RNG.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png", icc_profile=SRGB_ICC)
    gray_icc = imagecodecs.cms_profile("gray")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "g.png", icc_profile=gray_icc)

    colour, gray = read_image(tmp_path / "c.png"), read_image(tmp_path / "g.png")

    assert colour.icc_profile == SRGB_ICC and np.array_equal(as_uint(colour.pixels, 255), rgb)
    assert gray.icc_profile == gray_icc and np.array_equal(as_uint(gray.pixels, 255), rgb[..., 0])


@pytest.mark.parametrize("icc", [ADOBE_RGB_ICC, PROPHOTO_ICC], ids=["adobe_rgb", "prophoto"])
def test_wide_gamut_colour_is_converted_to_srgb_before_l_is_taken(tmp_path, icc):
    rgb = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "wide.png", icc_profile=icc)

    lightness, photo = read_luminance(tmp_path / "wide.png")
    pixels = read_image(tmp_path / "wide.png").pixels

    srgb = srgb_by_imagecms(rgb, icc)
    # LittleCMS builds (imagecodecs', Pillow's) round a rare sample one code apart
    assert np.abs(as_uint(pixels, 255) - srgb).max() <= 1
    assert np.abs(lightness - image_io.luminance(srgb / 255)).max() < 0.2
    assert np.abs(lightness - image_io.luminance(rgb / 255)).max() > 5  # what ignoring the profile gives
    assert photo.icc_profile == profiles.SRGB_PROFILE  # the pixels are sRGB now, not in the file's space


def test_16bit_adobe_rgb_is_converted_at_16_bits(tmp_path):
    rgb = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)  # 8-bit colours, for ImageCms to convert too
    tifffile.imwrite(tmp_path / "wide.tif", rgb * np.uint16(257), photometric="rgb", iccprofile=ADOBE_RGB_ICC)

    photo = read_image(tmp_path / "wide.tif")

    assert photo.bit_depth == 16 and photo.icc_profile == profiles.SRGB_PROFILE
    assert np.abs(photo.pixels * 255 - srgb_by_imagecms(rgb, ADOBE_RGB_ICC)).max() < 1
    inside = as_uint(photo.pixels, 65535)[(photo.pixels > 0) & (photo.pixels < 1)]  # not clipped to sRGB's gamut
    assert (inside % 257 != 0).mean() > 0.95  # converted in 16 bits, not in 8


def test_unreadable_rgb_profile_is_dropped_with_a_warning(tmp_path):
    rgb = RNG.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png", icc_profile=SRGB_ICC[:128] + bytes(300))

    with pytest.warns(UserWarning, match=r"c\.png: its ICC profile cannot be read"):
        photo = read_image(tmp_path / "c.png")

    assert photo.icc_profile is None and np.array_equal(as_uint(photo.pixels, 255), rgb)


@pytest.mark.parametrize("name", ["g16.png", "g16.tif"])
def test_16bit_gray_png_and_lzw_tiff_keep_every_value(tmp_path, name):
    gray = RNG.integers(0, 65536, (9, 7), dtype=np.uint16)
    Image.fromarray(gray).save(tmp_path / name, **({"compression": "tiff_lzw"} if name.endswith(".tif") else {}))

    photo = read_image(tmp_path / name)

    assert photo.bit_depth == 16 and photo.pixels.shape == (9, 7)
    assert np.array_equal(as_uint(photo.pixels, 65535), gray)


@pytest.mark.parametrize("planar", [False, True])
def test_16bit_rgb_tiff_keeps_every_value(tmp_path, planar):
    rgb = RNG.integers(0, 65536, (9, 7, 3), dtype=np.uint16)
    stored = np.moveaxis(rgb, -1, 0) if planar else rgb
    tifffile.imwrite(tmp_path / "c.tif", stored, photometric="rgb", planarconfig="separate" if planar else None)

    photo = read_image(tmp_path / "c.tif")

    assert (photo.bit_depth, photo.format) == (16, "TIFF")
    assert np.array_equal(as_uint(photo.pixels, 65535), rgb)


def test_16bit_tiff_alpha_miniswhite_and_float(tmp_path):
    rgba = RNG.integers(0, 65536, (5, 4, 4), dtype=np.uint16)
    rgba[..., 3] = 65535
    tifffile.imwrite(tmp_path / "a.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    gray = RNG.integers(0, 65536, (5, 4), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "w.tif", gray, photometric="miniswhite")
    floats = RNG.random((5, 4), dtype=np.float32) * 1.2
    tifffile.imwrite(tmp_path / "f.tif", floats, photometric="minisblack")

    assert np.array_equal(as_uint(read_image(tmp_path / "a.tif").pixels, 65535), rgba[..., :3])
    assert np.array_equal(as_uint(read_image(tmp_path / "w.tif").pixels, 65535), 65535 - gray)
    assert np.array_equal(read_image(tmp_path / "f.tif").pixels, np.clip(floats, 0, 1))


def test_16bit_rgb_png_keeps_every_value(tmp_path):
    rgb = RNG.integers(0, 65536, (3, 4, 3), dtype=np.uint16)
    write_png16_rgb(tmp_path / "c16.png", rgb)

    photo = read_image(tmp_path / "c16.png")

    assert (photo.bit_depth, photo.format) == (16, "PNG")
    assert np.array_equal(as_uint(photo.pixels, 65535), rgb)


def test_16bit_png_alpha_and_transparent_colour_are_composited(tmp_path):
    rgba = RNG.integers(0, 65536, (3, 4, 4), dtype=np.uint16)
    rgba[0, 0, 3], rgba[0, 1, 3] = 0, 65535
    (tmp_path / "a.png").write_bytes(imagecodecs.png_encode(rgba))
    rgb = rgba[..., :3].copy()
    png = imagecodecs.png_encode(rgb)
    transparent = png_chunk(b"tRNS", rgb[0, 0].astype(">u2").tobytes())  # the colour of the top-left pixel
    (tmp_path / "t.png").write_bytes(png[:33] + transparent + png[33:])  # after the signature and IHDR

    with_alpha, with_transparent_colour = read_image(tmp_path / "a.png"), read_image(tmp_path / "t.png")

    alpha = rgba[..., 3:] / 65535
    assert np.abs(with_alpha.pixels - (rgba[..., :3] / 65535 * alpha + 1 - alpha)).max() < 1e-6
    assert np.allclose(with_transparent_colour.pixels[0, 0], 1)
    assert np.array_equal(as_uint(with_transparent_colour.pixels, 65535)[1:], rgb[1:])


@pytest.mark.parametrize("maxval", [65535, 1023])
def test_16bit_colour_ppm_keeps_its_depth(tmp_path, maxval):
    codes = RNG.integers(0, maxval + 1, (4, 6, 3)).astype(">u2")
    (tmp_path / "c.ppm").write_bytes(b"P6\n# scanner\n6 4\n%d\n" % maxval + codes.tobytes())
    (tmp_path / "cut.ppm").write_bytes(b"P6\n6 4\n%d\n" % maxval + codes.tobytes()[:20])

    photo = read_image(tmp_path / "c.ppm")

    assert photo.bit_depth == 16 and photo.pixels.shape == (4, 6, 3)
    assert np.abs(photo.pixels * maxval - codes).max() < maxval / 65535
    with pytest.raises(ImageReadError, match="cut.ppm: image file is truncated"):
        read_image(tmp_path / "cut.ppm")


def test_tiffs_that_pillow_cannot_open_are_read_by_tifffile_with_their_tags(tmp_path):
    gray = RNG.random((3, 4))
    tifffile.imwrite(tmp_path / "f64.tif", gray, resolution=(300, 300), resolutionunit="INCH",
                     extratags=[(274, "H", 1, 6, True), (271, "s", 0, "Nikon", True)])
    tifffile.imwrite(tmp_path / "f16.tif", gray.astype(np.float16))
    codes = np.round(gray * 65535).astype(np.uint16)
    alpha = np.full_like(codes, 65535)
    alpha[0, 0] = 0
    tifffile.imwrite(tmp_path / "ga16.tif", np.dstack([codes, alpha]), photometric="minisblack",
                     extrasamples=["unassalpha"])
    (tmp_path / "empty.tif").write_bytes(b"II*\0" + bytes(50))
    for name in ("f64.tif", "f16.tif", "ga16.tif"):
        with pytest.raises(UnidentifiedImageError):
            Image.open(tmp_path / name)

    turned, half, with_alpha = (read_image(tmp_path / name) for name in ("f64.tif", "f16.tif", "ga16.tif"))

    assert np.allclose(turned.pixels, np.rot90(gray, -1), atol=1e-6) and turned.bit_depth == 16
    tags = exif_of(turned.exif)
    assert tags[271] == "Nikon" and tags[274] == 1 and tags[282] == 300
    assert np.allclose(half.pixels, gray, atol=1e-3)
    assert with_alpha.pixels[0, 0] == 1 and np.array_equal(as_uint(with_alpha.pixels, 65535)[1:], codes[1:])
    with pytest.raises(ImageReadError, match="empty.tif: not an image file"):
        read_image(tmp_path / "empty.tif")


# --- reading: orientation and metadata -----------------------------------------------------------------


def test_16bit_png_exif_after_the_pixels_is_read_without_decoding_them_twice(tmp_path, monkeypatch):
    rgb = RNG.integers(0, 65536, (4, 6, 3), dtype=np.uint16)
    png = imagecodecs.png_encode(rgb)
    exif = exif_with(Orientation=6, Make="Hasselblad").tobytes().removeprefix(b"Exif\x00\x00")
    (tmp_path / "late.png").write_bytes(png[:-12] + png_chunk(b"eXIf", exif) + png[-12:])  # before IEND
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", None)  # Pillow may read the chunks, not the pixels

    photo = read_image(tmp_path / "late.png")

    assert np.array_equal(as_uint(photo.pixels, 65535), np.rot90(rgb, -1))
    assert exif_of(photo.exif)[271] == "Hasselblad"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_and_is_reset(tmp_path, orientation):
    rgb = RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    exif = exif_with(Orientation=orientation, Make="Scanner")
    Image.fromarray(rgb).save(tmp_path / "o.jpg", exif=exif, quality=90)

    photo = read_image(tmp_path / "o.jpg")

    expected = opened(tmp_path / "o.jpg", lambda im: np.asarray(ImageOps.exif_transpose(im)))
    assert photo.pixels.shape == ((6, 4, 3) if orientation >= 5 else (4, 6, 3))
    assert np.array_equal(as_uint(photo.pixels, 255), expected)
    assert exif_of(photo.exif)[274] == 1 and exif_of(photo.exif)[271] == "Scanner"


@pytest.mark.parametrize(("orientation", "turn"), [(6, lambda a: np.rot90(a, -1)), (8, np.rot90)])
def test_orientation_puts_pixels_in_place(tmp_path, orientation, turn):
    gray = np.zeros((4, 6), np.uint8)
    gray[0, 0] = 255  # a marker in the stored top-left corner
    exif = exif_with(Orientation=orientation).tobytes()
    Image.fromarray(gray).save(tmp_path / "o.png", exif=exif)
    Image.fromarray(gray).save(tmp_path / "o8.tif", exif=exif)
    Image.fromarray(gray).save(tmp_path / "lzw.tif", exif=exif, compression="tiff_lzw")
    tifffile.imwrite(tmp_path / "o16.tif", gray * np.uint16(257), extratags=[(274, "H", 1, orientation, True)])

    for name in ("o.png", "o8.tif", "lzw.tif", "o16.tif"):  # Pillow's and tifffile's paths
        pixels = read_image(tmp_path / name).pixels
        assert pixels.shape == (6, 4)
        assert np.array_equal(pixels, turn(gray) / 255)
    # 90 degrees clockwise moves the top-left corner to the top-right, counter-clockwise to the bottom-left
    assert turn(gray)[(0, -1) if orientation == 6 else (-1, 0)] == 255


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("compression", [None, "tiff_lzw"], ids=["raw", "lzw"])
def test_palette_and_cmyk_tiffs_are_turned_like_a_png_of_the_same_pixels(tmp_path, orientation, compression):
    # Pillow 13 scrambles raw palette and CMYK TIFFs under orientations 5-8: tifffile reads them instead.
    rgb = RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    exif = exif_with(Orientation=orientation)
    options = {"compression": compression} if compression else {}
    sources = {
        "gray_palette": Image.fromarray(rgb[..., 0]).convert("P"),
        "colour_palette": Image.fromarray(rgb).quantize(8),
        "cmyk": Image.fromarray(RNG.integers(0, 256, (4, 6, 4), dtype=np.uint8), "CMYK"),
    }
    for name, source in sources.items():
        source.save(tmp_path / f"{name}.tif", exif=exif, **options)
        source.convert("L" if name == "gray_palette" else "RGB").save(tmp_path / f"{name}.png", exif=exif)

        turned, reference = read_image(tmp_path / f"{name}.tif"), read_image(tmp_path / f"{name}.png")

        assert turned.pixels.shape == reference.pixels.shape, name
        assert np.array_equal(turned.pixels, reference.pixels), name
        assert turned.bit_depth == 8 and exif_of(turned.exif)[274] == 1


def test_cmyk_tiff_says_that_its_cmyk_profile_is_not_applied(tmp_path):
    cmyk_icc = SRGB_ICC[:16] + b"CMYK" + SRGB_ICC[20:]
    Image.fromarray(RNG.integers(0, 256, (4, 6, 4), dtype=np.uint8), "CMYK").save(tmp_path / "c.tif", icc_profile=cmyk_icc)

    with pytest.warns(UserWarning, match="c.tif: its CMYK ICC profile is not applied"):
        photo = read_image(tmp_path / "c.tif")

    assert photo.icc_profile is None and photo.pixels.shape == (4, 6, 3)


def test_tiff_exif_keeps_the_photo_tags_only(tmp_path):
    exif = exif_with(Make="Epson", Artist="A. Archivist", Orientation=3)
    exif[ExifTags.IFD.Exif] = {ExifTags.Base.DateTimeOriginal: "1950:01:02 03:04:05"}
    rgb = RNG.integers(0, 256, (3, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "s.tif", exif=exif.tobytes())

    photo = read_image(tmp_path / "s.tif")

    assert np.array_equal(as_uint(photo.pixels, 255), rgb[::-1, ::-1])  # orientation 3: turned half round
    tags = exif_of(photo.exif)
    assert tags[271] == "Epson" and tags[315] == "A. Archivist" and tags.get(274, 1) == 1
    assert 273 not in tags and 256 not in tags  # strip offsets and width describe the old file only
    assert tags.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] == "1950:01:02 03:04:05"


def test_reading_leaves_the_file_untouched(tmp_path):
    Image.fromarray(RNG.integers(0, 256, (5, 5, 3), dtype=np.uint8)).save(
        tmp_path / "o.jpg", exif=exif_with(Orientation=6))
    tifffile.imwrite(tmp_path / "o.tif", RNG.integers(0, 65536, (5, 5, 3), dtype=np.uint16), photometric="rgb")
    for name in ("o.jpg", "o.tif"):
        before = hashlib.sha256((tmp_path / name).read_bytes()).digest()
        read_image(tmp_path / name)
        assert hashlib.sha256((tmp_path / name).read_bytes()).digest() == before


# --- reading: errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cut.jpg", "cut.png", "cut.tif", "cut_deflate.tif"])
def test_truncated_image_raises(tmp_path, name):
    path = tmp_path / name
    rgb = data.astronaut()[::8, ::8]
    if name.endswith(".tif"):  # 16 bits: tifffile's path
        compression = "zlib" if "deflate" in name else None
        tifffile.imwrite(path, rgb * np.uint16(257), photometric="rgb", rowsperstrip=8, compression=compression)
    else:
        Image.fromarray(rgb).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    with pytest.raises(ImageReadError, match="truncated|failed to read") as err:
        read_image(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["lzw.tif", "zlib.tif", "lzma.tif", "c16.png"])
def test_corrupt_compressed_data_raises_one_line(tmp_path, name):
    path = tmp_path / name
    rgb = data.astronaut()[::8, ::8] * np.uint16(257)
    if name.endswith(".tif"):
        tifffile.imwrite(path, rgb, photometric="rgb", compression=path.stem)
        with tifffile.TiffFile(path) as tif:
            start = tif.pages[0].dataoffsets[0] + 20
    else:
        path.write_bytes(imagecodecs.png_encode(rgb))
        start = 60
    raw = bytearray(path.read_bytes())
    raw[start : start + 100] = bytes(range(100, 200))
    path.write_bytes(raw)

    with pytest.raises(ImageReadError, match="error while decompressing data: ") as err:
        read_image(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


def test_tiff_codec_that_nothing_decodes_raises_one_line(tmp_path):
    tifffile.imwrite(tmp_path / "t.tif", np.zeros((4, 4), np.uint16))
    raw = bytearray((tmp_path / "t.tif").read_bytes())
    with tifffile.TiffFile(tmp_path / "t.tif") as tif:
        struct.pack_into("<H", raw, tif.pages[0].tags["Compression"].valueoffset, 32809)  # ThunderScan
    (tmp_path / "t.tif").write_bytes(raw)

    with pytest.raises(ImageReadError, match=r"t\.tif: .*THUNDERSCAN.* not supported$"):
        read_image(tmp_path / "t.tif")


def test_garbage_and_missing_files_raise_one_line(tmp_path):
    (tmp_path / "notes.jpg").write_bytes(b"these are not pixels\n" * 10)

    with pytest.raises(ImageReadError, match=r"notes\.jpg: not an image file"):
        read_image(tmp_path / "notes.jpg")
    with pytest.raises(ImageReadError, match=r"gone\.png: No such file or directory$"):
        read_image(tmp_path / "gone.png")


def test_image_read_error_survives_pickling():
    err = pickle.loads(pickle.dumps(ImageReadError("a.tif", "bad\nstrip")))
    assert (str(err), err.path, err.cause) == ("a.tif: bad strip", "a.tif", "bad strip")


def test_pixel_limit_is_max_pixels_not_pillows(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # Pillow alone would refuse 400 pixels
    assert read_image(tmp_path / "big.png").pixels.shape == (20, 20)

    monkeypatch.setattr(image_io, "MAX_PIXELS", 399)
    with pytest.raises(ImageReadError, match=r"big\.png: more than 399 pixels"):
        read_image(tmp_path / "big.png")


# --- luminance ----------------------------------------------------------------------------------------


def test_luminance_matches_skimage_for_colour_and_gray(tmp_path, monkeypatch):
    rgb, gray = data.astronaut()[::8, ::8], data.camera()[::8, ::8]
    Image.fromarray(rgb).save(tmp_path / "c.png")
    Image.fromarray(gray).save(tmp_path / "g.png")
    monkeypatch.setattr(image_io, "_STRIP_PIXELS", 100)  # many strips, uneven last one

    lightness, photo = read_luminance(tmp_path / "c.png")
    gray_lightness, _ = read_luminance(tmp_path / "g.png")

    assert lightness.dtype == np.float32 and lightness.shape == rgb.shape[:2] and photo.colour
    assert np.abs(lightness - color.rgb2lab(rgb / 255)[..., 0]).max() < 1e-3
    assert np.abs(gray_lightness - color.rgb2lab(color.gray2rgb(gray / 255))[..., 0]).max() < 1e-3


def test_16bit_luminance_matches_skimage_and_read_image(tmp_path):
    rgb = RNG.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "c.tif", rgb, photometric="rgb")
    tifffile.imwrite(tmp_path / "g.tif", rgb[..., 0], photometric="minisblack")

    for name, expected_rgb in [("c.tif", rgb / 65535), ("g.tif", color.gray2rgb(rgb[..., 0] / 65535))]:
        lightness, photo = read_luminance(tmp_path / name)
        assert photo.bit_depth == 16 and photo.pixels is None
        assert np.abs(lightness - color.rgb2lab(expected_rgb)[..., 0]).max() < 1e-3
        # the per-code tables give what the float path gives
        pixels = read_image(tmp_path / name).pixels
        assert np.abs(lightness - image_io.luminance(pixels)).max() < 1e-3


@pytest.mark.parametrize("name", ["jfif.jpg", "phys.png", "phys16.png"])
def test_resolution_outside_exif_is_carried_into_the_output(tmp_path, name):
    gray = RNG.integers(0, 256, (4, 6), dtype=np.uint8)
    if name == "phys16.png":
        Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / name, dpi=(300, 300))  # pHYs, no EXIF
    else:
        Image.fromarray(gray).save(tmp_path / name, dpi=(300, 300))

    photo = read_image(tmp_path / name)
    write_image(tmp_path / "out.jpg", np.dstack([gray] * 3), exif=photo.exif)

    assert opened(tmp_path / "out.jpg", lambda im: im.info["dpi"]) == (300, 300)


def test_non_finite_float_samples_are_said_and_made_finite(tmp_path):
    gray = np.full((4, 5), 0.5, np.float32)
    gray[1, 2], gray[2, 3], gray[3, 4] = np.nan, np.inf, -np.inf
    tifffile.imwrite(tmp_path / "nan.tif", gray)

    with pytest.warns(UserWarning, match="nan.tif: 3 samples are NaN or infinite"):
        photo = read_image(tmp_path / "nan.tif")

    assert photo.pixels[1, 2] == 0 and photo.pixels[2, 3] == 1 and photo.pixels[3, 4] == 0
    assert np.isfinite(photo.pixels).all() and photo.pixels[0, 0] == 0.5


def test_a_float_tiff_with_a_zero_denominator_resolution_is_read_without_it(tmp_path):
    tifffile.imwrite(tmp_path / "z.tif", RNG.random((3, 4)), resolution=(300, 300), resolutionunit="INCH")
    data = (tmp_path / "z.tif").read_bytes()
    (tmp_path / "z.tif").write_bytes(data.replace(struct.pack("<II", 300, 1), struct.pack("<II", 300, 0)))

    photo = read_image(tmp_path / "z.tif")

    assert photo.pixels.shape == (3, 4) and 282 not in exif_of(photo.exif)


def test_exif_resolution_without_a_unit_stays_without_one(tmp_path):
    exif = exif_with(XResolution=72, YResolution=72, ResolutionUnit=1)
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(tmp_path / "aspect.jpg", exif=exif)  # JFIF: unit 0

    tags = exif_of(read_image(tmp_path / "aspect.jpg").exif)

    assert tags[296] == 1 and tags[282] == 72


def test_a_resolution_without_a_unit_is_no_dpi(tmp_path):
    exif = exif_with(XResolution=1, YResolution=1, ResolutionUnit=1)  # tifffile's default: an aspect ratio
    write_image(tmp_path / "out.png", np.zeros((2, 2, 3), np.uint8), exif=exif.tobytes())
    assert "dpi" not in opened(tmp_path / "out.png", lambda im: im.info)


# --- writing ------------------------------------------------------------------------------------------


def test_16bit_tiff_round_trip_with_metadata(tmp_path):
    rgb = RNG.integers(0, 65536, (6, 5, 3), dtype=np.uint16)
    exif = exif_with(Make="Nikon", Copyright="(c) Stadtarchiv München".encode(),  # UTF-8, as cameras write it
                     XResolution=1200, YResolution=1200, ResolutionUnit=2, Orientation=6)

    write_image(tmp_path / "out.tif", rgb, exif=exif.tobytes(), icc_profile=SRGB_ICC, description="colorized")

    photo = read_image(tmp_path / "out.tif")
    assert photo.bit_depth == 16 and np.array_equal(as_uint(photo.pixels, 65535), rgb)  # orientation 1 written
    assert photo.icc_profile == SRGB_ICC
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        tags = {tag.name: tag.value for tag in tif.pages[0].tags}
    assert tags["ImageDescription"] == "colorized" and tags["Software"] == image_io.SOFTWARE
    assert tags["Make"] == "Nikon" and tags["Copyright"] == "(c) Stadtarchiv München"
    assert tags["XResolution"] == (1200, 1) and "Orientation" not in tags


def test_16bit_tiff_says_it_drops_the_exif_sub_ifds(tmp_path):
    exif = exif_with(Make="Nikon")
    exif[ExifTags.IFD.Exif] = {ExifTags.Base.DateTimeOriginal: "1950:01:02 03:04:05"}
    rgb = np.zeros((2, 2, 3), np.uint16)

    with pytest.warns(UserWarning, match="out.tif: a 16-bit TIFF is written without the EXIF and GPS sub-IFDs"):
        write_image(tmp_path / "out.tif", rgb, exif=exif.tobytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_image(tmp_path / "plain.tif", rgb, exif=exif_with(Make="Nikon").tobytes())  # nothing lost: no word

    assert exif_of(read_image(tmp_path / "out.tif").exif)[271] == "Nikon"


def test_16bit_png_round_trip_keeps_what_an_8bit_png_keeps(tmp_path):
    rgb = RNG.integers(0, 65536, (6, 5, 3), dtype=np.uint16)
    exif = exif_with(Make="Nikon", XResolution=600, YResolution=600, ResolutionUnit=2, Orientation=6)
    exif[ExifTags.IFD.Exif] = {ExifTags.Base.DateTimeOriginal: "1950:01:02 03:04:05"}

    write_image(tmp_path / "out.png", rgb, exif=exif.tobytes(), icc_profile=SRGB_ICC, description="Colorisé")
    write_image(tmp_path / "out8.png", (rgb >> 8).astype(np.uint8), exif=exif.tobytes(), icc_profile=SRGB_ICC,
                description="Colorisé")

    photo = read_image(tmp_path / "out.png")
    assert png16.bit_depth(tmp_path / "out.png") == 16 and photo.bit_depth == 16
    assert np.array_equal(as_uint(photo.pixels, 65535), rgb)  # orientation 1 written
    assert photo.icc_profile == SRGB_ICC
    tags = exif_of(photo.exif)
    assert tags[271] == "Nikon" and tags.get(274, 1) == 1 and tags[305] == image_io.SOFTWARE
    assert tags[270].encode("latin-1") == "Colorisé".encode()
    assert tags.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] == "1950:01:02 03:04:05"
    info16, info8 = (opened(tmp_path / name, lambda im: im.info) for name in ("out.png", "out8.png"))
    assert info16 == info8 and round(info16["dpi"][0]) == 600


@pytest.mark.parametrize("name", ["out.jpg", "out.png", "out.tif", "out.webp"])
def test_8bit_write_keeps_icc_and_exif_and_sets_description(tmp_path, name):
    rgb = RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    exif = exif_with(Make="Canon", Orientation=8, ImageDescription="old")
    exif[ExifTags.IFD.Exif] = {ExifTags.Base.DateTimeOriginal: "1950:01:02 03:04:05"}

    write_image(tmp_path / name, rgb, exif=exif.tobytes(), icc_profile=SRGB_ICC, description="Colorisé")

    photo = read_image(tmp_path / name)
    assert photo.pixels.shape == rgb.shape and photo.icc_profile == SRGB_ICC
    tags = exif_of(photo.exif)
    assert tags[271] == "Canon" and tags.get(274, 1) == 1
    assert tags[270].encode("latin-1") == "Colorisé".encode()  # UTF-8 bytes, as Pillow reads them
    assert tags[305] == image_io.SOFTWARE
    assert tags.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] == "1950:01:02 03:04:05"
    if name in ("out.png", "out.tif"):
        assert np.array_equal(as_uint(photo.pixels, 255), rgb)


def test_jpeg_quality_and_chroma(tmp_path):
    rgb = data.astronaut()[::4, ::4]
    write_image(tmp_path / "hi.jpg", rgb, quality=95)
    write_image(tmp_path / "lo.jpg", rgb, quality=30)
    luma_sampling = opened(tmp_path / "hi.jpg", lambda im: im.layer[0][1:3])
    assert luma_sampling == (1, 1)  # 4:4:4, full-resolution chroma at quality >= 90
    assert (tmp_path / "lo.jpg").stat().st_size < (tmp_path / "hi.jpg").stat().st_size


def test_write_rejects_what_it_cannot_write(tmp_path):
    with pytest.raises(ValueError, match="16-bit output needs TIFF or PNG"):
        write_image(tmp_path / "o.jpg", np.zeros((2, 2, 3), np.uint16))
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8 or uint16"):
        write_image(tmp_path / "o.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="cannot tell the image format"):
        write_image(tmp_path / "o.xyz", np.zeros((2, 2, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []
    write_image(tmp_path / "o.dat", np.zeros((2, 2, 3), np.uint8), format="jpg")
    assert opened(tmp_path / "o.dat", lambda im: im.format) == "JPEG"


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    write_image(path, np.zeros((4, 4, 3), np.uint8))
    before = path.read_bytes()

    def half_write_then_fail(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", half_write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_image(path, np.full((4, 4, 3), 255, np.uint8))

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_failed_16bit_png_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    write_image(path, np.zeros((4, 4, 3), np.uint16))
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(png16, "_metadata_chunks", fail)  # the signature and header are written by then
    with pytest.raises(OSError, match="disk full"):
        write_image(path, np.full((4, 4, 3), 65535, np.uint16))

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = tmp_path / "f.txt"
    with atomic_write(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".f.txt.tmp-")
        tmp.write_text("new")
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]

    with pytest.raises(KeyboardInterrupt), atomic_write(path) as tmp:
        tmp.write_text("partial")
        raise KeyboardInterrupt
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def _gray_photo(height=96, width=128):
    yy, xx = np.mgrid[0:height, 0:width]
    return (127 + 100 * np.sin(xx / 7.0) * np.cos(yy / 5.0)).astype(np.uint8)


@pytest.mark.parametrize(
    ("kind", "icc"),
    [("gray in RGB", None), ("gray in RGB", "srgb"), ("gray in RGB", "adobe"), ("tinted", None)],
)
def test_lightness_of_colour_jpegs_is_the_same_by_the_gray_shortcut_or_not(kind, icc, tmp_path):
    # A gray photo stored as a colour JPEG is decoded from its luma alone (read_luminance's shortcut);
    # a tinted one, or one under another profile than sRGB, goes the whole way. L is the same as from
    # the RGB pixels either way, and the photo still counts as stored in colour, its profile kept.
    gray = _gray_photo()
    rgb = np.repeat(gray[..., None], 3, axis=2)
    if kind == "tinted":
        rgb = np.clip(rgb.astype(int) + np.array([12, 0, -12]), 0, 255).astype(np.uint8)
    profile = {None: None, "srgb": SRGB_ICC, "adobe": ADOBE_RGB_ICC}[icc]
    path = tmp_path / "scan.jpg"
    Image.fromarray(rgb).save(path, quality=92, **({"icc_profile": profile} if profile else {}))

    with Image.open(path) as im:
        assert image_io._gray_jpeg(path, im) == (kind == "gray in RGB" and icc != "adobe")
    lightness, photo = read_luminance(path)
    full = read_image(path)
    assert photo.colour and full.colour
    assert photo.icc_profile == full.icc_profile
    assert np.abs(lightness - image_io.luminance(full.pixels)).max() < 1e-3


def test_the_gray_shortcut_leaves_damaged_jpegs_to_the_full_decode(tmp_path):
    path = tmp_path / "cut.jpg"
    encoded = BytesIO()
    Image.fromarray(np.repeat(_gray_photo()[..., None], 3, axis=2)).save(encoded, format="JPEG")
    path.write_bytes(encoded.getvalue()[:400])
    with pytest.raises(ImageReadError, match="cut.jpg"):
        read_luminance(path)


def test_the_gray_shortcut_turns_an_exif_rotated_jpeg_upright(tmp_path):
    rgb = np.repeat(_gray_photo(48, 80)[..., None], 3, axis=2)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    path = tmp_path / "turned.jpg"
    Image.fromarray(rgb).save(path, quality=92, exif=exif)
    lightness, photo = read_luminance(path)
    assert lightness.shape == (80, 48)
    assert np.abs(lightness - image_io.luminance(read_image(path).pixels)).max() < 1e-3
