"""Photo files in and out: pixels as float arrays, upright, in sRGB, with their EXIF and ICC profile carried along.

Reading: any file Pillow opens (the first frame of GIF/WebP/TIFF, with a warning when there are more).
Gray, RGB, palette and CMYK TIFFs go through tifffile, with every codec of imagecodecs (LZW, deflate, JPEG,
ZSTD, CCITT...); 16-bit PNGs go through imagecodecs' libpng: both keep 16 bits, which Pillow cannot for colour
(and Pillow 13 scrambles raw palette and CMYK TIFFs turned by EXIF 5-8). Other TIFFs (YCbCr) go through
Pillow. What each file becomes:
  1, L, gray palette, I;16*, I, F, gray TIFF  -> gray (H, W); I;16 and deeper -> bit_depth 16
  RGB, colour palette, CMYK, YCbCr, RGB TIFF  -> colour (H, W, 3); CMYK by Pillow's plain formula (its ICC
                                                profile not applied, with a warning)
  any alpha (LA, RGBA, PA, palette or PNG transparency, TIFF alpha) -> composited on white
  miniswhite TIFF -> inverted to the usual black-is-0; floats are taken as [0, 1] and clipped
  colour under an RGB profile other than sRGB (Adobe RGB, ProPhoto...) -> converted to sRGB (profiles.py)
A TIFF that Pillow cannot open at all (float16/64, float colour, 16-bit gray with alpha) is read by tifffile
alone, its photo tags with it. Limits: 16-bit YCbCr TIFFs are read at 8 bits (Pillow's), with a warning.
An ICC profile is returned only when it describes the returned pixels (a CMYK profile is dropped with the
conversion to RGB, with a warning; a converted photo gets sRGB's).
"""

from __future__ import annotations

import dataclasses
import functools
import lzma
import os
import stat
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile
from PIL import ExifTags, Image, TiffTags, UnidentifiedImageError

from colorize_cli import __version__
from colorize_cli.photos import lightness, png16, profiles
from colorize_cli.photos.fsutil import atomic_write

MAX_PIXELS = 300_000_000
"""Largest image read_image accepts (Pillow's bomb guard rises to match); raise it knowingly for bigger scans."""

SOFTWARE = f"colorize {__version__}"

_Tag = ExifTags.Base
_SUB_IFDS = (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo)
# A TIFF's first IFD also holds its layout (strip offsets, sample format...): only these describe the photo.
_TIFF_PHOTO_TAGS = frozenset(
    {
        _Tag.ImageDescription, _Tag.Make, _Tag.Model, _Tag.Orientation, _Tag.XResolution,
        _Tag.YResolution, _Tag.ResolutionUnit, _Tag.Software, _Tag.DateTime, _Tag.Artist, _Tag.Copyright,
    }
)
# EXIF text that tifffile writes into a 16-bit TIFF (it cannot write the EXIF and GPS sub-IFDs).
_TIFF_TEXT_TAGS = (_Tag.Make, _Tag.Model, _Tag.DateTime, _Tag.Artist, _Tag.Copyright)
_TIFF_COLOUR_CHANNELS = {
    tifffile.PHOTOMETRIC.MINISWHITE: 1,
    tifffile.PHOTOMETRIC.MINISBLACK: 1,
    tifffile.PHOTOMETRIC.RGB: 3,
}
_TIFF_BITS = (1, 8, 16, 32, 64)  # tifffile hands 2, 4 and 12 bits over unscaled
_TIFF_ALPHAS = (tifffile.EXTRASAMPLE.ASSOCALPHA, tifffile.EXTRASAMPLE.UNASSALPHA)
_SIXTEEN_BIT_FORMATS = frozenset({"TIFF", "PNG"})
_PILLOW_KEPT_MODES = frozenset({"L", "LA", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "I;16N", "F"})
# EXIF orientation -> the numpy view that makes the pixels upright (same result as ImageOps.exif_transpose).
_ORIENTATIONS = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: a.swapaxes(0, 1)[:, ::-1],
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
    8: lambda a: a.swapaxes(0, 1)[::-1],
}
# Decoders report corrupt data with any of these.
_DECODE_ERRORS = (
    ValueError, SyntaxError, EOFError, struct.error, IndexError, KeyError, zlib.error, lzma.LZMAError
)
# skimage's sRGB (D65) -> XYZ matrix, Y row, and its CIE L* constants.
_SRGB_TO_Y = np.array([0.212671, 0.715160, 0.072169])
_LAB_EPSILON, _LAB_KAPPA = 0.008856, 116 * 7.787
_STRIP_PIXELS = 1 << 18


@dataclass
class Photo:
    """A decoded photo: float32 pixels in [0, 1], gray (H, W) or colour (H, W, 3), already upright.

    read_luminance leaves `pixels` out (None): it goes from the stored samples to L directly.
    """

    pixels: np.ndarray | None
    bit_depth: int  # 8 or 16: the precision the file held
    exif: bytes | None  # orientation reset to 1
    icc_profile: bytes | None  # of the pixels as returned: profiles.SRGB_PROFILE once converted to sRGB
    format: str  # Pillow's name: "JPEG", "PNG", "TIFF", ...
    colour: bool  # three channels (even if they happen to be equal) rather than one


class ImageReadError(ValueError):
    """An unreadable, corrupt, truncated or too-large image; str() is '<path>: <cause>' on one line."""

    def __init__(self, path: str | os.PathLike, cause: object):
        self.path = os.fspath(path)
        self.cause = " ".join(str(cause).split())
        super().__init__(f"{self.path}: {self.cause}")

    def __reduce__(self):
        return type(self), (self.path, self.cause)


def read_image(path: str | os.PathLike) -> Photo:
    """Read a photo (see the module docstring for what each kind of file becomes); raises ImageReadError."""
    samples, premultiplied, photo = _decode(path)
    return dataclasses.replace(photo, pixels=_to_unit(samples, premultiplied))


def read_luminance(path: str | os.PathLike, allocate=np.empty) -> tuple[np.ndarray, Photo]:
    """CIE L* in [0, 100] (float32, H x W) of the photo at `path`, and the photo without its pixels.

    `allocate(shape, dtype)` gives the L array where it comes from the codes (a batch worker's scratch).
    """
    samples, premultiplied, photo = _decode(path, lightness_only=True)
    return _lightness_of_samples(samples, premultiplied, allocate), photo


def read_lightness(path: str | os.PathLike, allocate=np.empty, allocate_codes=np.empty
                   ) -> tuple[lightness.Lightness, Photo]:
    """read_luminance's L*, but a gray photo's as its codes with their L* (see lightness.Lightness).

    `allocate(shape, dtype)` gives the float L array where one is built (colour or turned samples),
    `allocate_codes` a gray JPEG's decoded codes: two buffers, as a turned photo needs both at once.
    """
    samples, premultiplied, photo = _decode(path, lightness_only=True, allocate_codes=allocate_codes)
    if samples.dtype in (np.uint8, np.uint16) and samples.shape[2] == 1:
        codes = samples[..., 0]
        if codes.flags.c_contiguous:  # a photo turned by EXIF goes through the tiled look-up instead
            codes = codes.view()
            codes.flags.writeable = False  # decoders hand over either; one kind for numba to compile
            return lightness.Lightness(codes, _code_tables(codes.dtype.str)[1]), photo
    return lightness.Lightness(_lightness_of_samples(samples, premultiplied, allocate)), photo


def _lightness_of_samples(samples, premultiplied, allocate):
    if samples.dtype in (np.uint8, np.uint16) and samples.shape[2] in (1, 3):  # no alpha: per-code tables
        return _lightness_of_codes(samples, allocate)
    return luminance(_to_unit(samples, premultiplied))


def _decode(path: str | os.PathLike, lightness_only: bool = False, allocate_codes=np.empty
            ) -> tuple[np.ndarray, bool, Photo]:
    """Upright samples (H, W, C) as stored, whether alpha is premultiplied, and the photo minus its pixels.

    lightness_only: the caller takes only L from the samples, so a gray photo stored as a colour JPEG may
    come as its one gray channel (see _gray_jpeg), decoded into `allocate_codes(shape, dtype)` (_jpeg_luma).
    """
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own guard moves up to ours, never down (thread-safe)
    _require_regular_file(path)
    _being_read.path = path
    try:
        try:
            samples, premultiplied, gray_in_colour, bit_depth, exif_bytes, icc, fmt = _decode_by_pillow(
                path, lightness_only, allocate_codes)
        except UnidentifiedImageError:
            if not _starts_like_tiff(path):
                raise
            samples, premultiplied, bit_depth, exif_bytes, icc = _decode_tiff_alone(path)
            gray_in_colour, fmt = False, "TIFF"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        cause = f"more than {MAX_PIXELS:,} pixels (raise colorize_cli.photos.io.MAX_PIXELS to read it)"
        raise ImageReadError(path, cause) from None
    except UnidentifiedImageError:
        raise ImageReadError(path, "not an image file, or a kind Pillow cannot read") from None
    except OSError as err:
        raise ImageReadError(path, err.strerror or err) from err
    except _DECODE_ERRORS as err:
        raise ImageReadError(path, err) from err
    except RuntimeError as err:  # imagecodecs' codecs report corrupt data with errors of their own
        if not type(err).__module__.startswith("imagecodecs"):
            raise
        raise ImageReadError(path, f"error while decompressing data: {err}") from err
    finally:
        _being_read.path = None
    if samples.dtype.kind == "f" and not np.isfinite(samples).all():
        # One NaN would spread through the guided filter's running sums to a quarter of the image.
        warnings.warn(f"{path}: {np.count_nonzero(~np.isfinite(samples)):,} samples are NaN or infinite; taken "
                      "as 0 (NaN, -inf) or 1 (+inf)", stacklevel=3)
        samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=0.0)
    colour = gray_in_colour or samples.shape[2] >= 3  # as stored: its RGB profile still describes the output
    if icc is not None and profiles.colour_space(icc) != (b"RGB " if colour else b"GRAY"):
        if profiles.colour_space(icc) == b"CMYK":  # LittleCMS could apply it; we have no ink profile to test with
            warnings.warn(f"{path}: its CMYK ICC profile is not applied; CMYK becomes RGB by the plain formula",
                          stacklevel=3)
        icc = None
    if colour and icc is not None and not gray_in_colour:  # (_gray_jpeg took only sRGB profiles)
        samples, icc = _in_srgb(path, samples, icc)
    return samples, premultiplied, Photo(None, bit_depth, exif_bytes, icc, fmt, colour)


_being_read = threading.local()  # per batch worker: the file its decoders are reading


def path_being_read() -> str | os.PathLike | None:
    """The file this thread is decoding, if any: a warning from inside Pillow ('Corrupt EXIF data') does not
    name it, so whoever shows warnings can."""
    return getattr(_being_read, "path", None)


def _decode_by_pillow(path, lightness_only, allocate_codes):
    """_decode's work for every file Pillow opens: (samples, premultiplied, gray_in_colour, bit_depth, EXIF
    bytes, ICC profile, format)."""
    with Image.open(path) as im:
        if im.width * im.height > MAX_PIXELS:  # Pillow only warns up to twice its limit
            raise Image.DecompressionBombError(im.size)
        gray_in_colour = lightness_only and _gray_jpeg(path, im)
        if gray_in_colour or (lightness_only and im.format == "JPEG" and im.mode == "L"):
            # libjpeg decodes the luma plane alone: R = G = B = Y for gray photos stored in colour
            samples, premultiplied = _jpeg_luma(path, im, allocate_codes), False
        else:
            samples, premultiplied = _samples(path, im)
        if _more_frames(im):
            _warn_first_frame_only(path)
        # Read after decoding: Pillow turns TIFFs upright itself (and drops their orientation) as it loads.
        exif = im.getexif()
        samples = _orient(samples, exif.get(_Tag.Orientation, 1))
        bit_depth = _bit_depth(samples)
        tags = _portable_exif(exif, _TIFF_PHOTO_TAGS if im.format == "TIFF" else None)
        _resolution_into_exif(tags, _density(im))
        exif_bytes = _exif_bytes(tags) if len(tags) else None  # while open: TIFF sub-IFDs load lazily
        icc = im.info.get("icc_profile")
        fmt = im.format
    return samples, premultiplied, gray_in_colour, bit_depth, exif_bytes, icc, fmt


def _warn_first_frame_only(path):
    warnings.warn(f"{path}: more than one page or frame; only the first is read", stacklevel=4)


def _starts_like_tiff(path) -> bool:
    with open(path, "rb") as file:
        return file.read(4) in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")


def _decode_tiff_alone(path):
    """A TIFF Pillow cannot open (float16 or float64 gray, 16-bit gray with alpha...), all through tifffile:
    (samples, premultiplied, bit_depth, EXIF bytes, ICC profile)."""
    with tifffile.TiffFile(path) as tif:
        if not len(tif.pages):
            raise UnidentifiedImageError(path)
        page = tif.pages[0]
        if page.photometric not in _TIFF_COLOUR_CHANNELS or page.bitspersample not in _TIFF_BITS:
            raise UnidentifiedImageError(path)
        if page.imagewidth * page.imagelength > MAX_PIXELS:
            raise Image.DecompressionBombError(page.shape)
        samples, premultiplied = _tiff_samples(page)
        if len(tif.pages) > 1:
            _warn_first_frame_only(path)
        exif = Image.Exif()
        for tag in _TIFF_PHOTO_TAGS:
            if tag in page.tags:
                value = page.tags[tag].value
                if isinstance(value, tuple) and len(value) == 2:  # a rational; 0/0 from odd writers means none
                    if not value[1]:
                        continue
                    value = value[0] / value[1]
                exif[tag] = value
        icc = page.tags.valueof(34675)  # InterColorProfile
    if samples.dtype == np.float16:
        samples = samples.astype(np.float32)
    samples = _orient(samples, int(exif.get(_Tag.Orientation, 1)))
    for tag, value in exif.items():
        if isinstance(value, int):  # tifffile gives enums (orientation, unit), which Pillow cannot write
            exif[tag] = int(value)
    tags = _portable_exif(exif)
    return samples, premultiplied, _bit_depth(samples), _exif_bytes(tags) if len(tags) else None, icc


def _in_srgb(path: str | os.PathLike, samples: np.ndarray, icc: bytes) -> tuple[np.ndarray, bytes | None]:
    """Colour samples and their RGB profile, converted to sRGB where the profile describes another space."""
    try:
        return profiles.to_srgb(samples, icc)
    except profiles.ProfileError:  # like broken EXIF: not worth the photo
        warnings.warn(f"{path}: its ICC profile cannot be read; the colours are taken as sRGB", stacklevel=4)
        return samples, None


def _more_frames(im: Image.Image) -> bool:
    """Whether the file holds pages or frames after the first (Pillow tells without decoding them)."""
    try:
        return bool(getattr(im, "is_animated", False))
    except (OSError, *_DECODE_ERRORS):  # a damaged later frame does not spoil the first
        return False


def _require_regular_file(path: str | os.PathLike) -> None:
    """Refuse what is not a plain file (after links): reading a FIFO or a device would wait or never end."""
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise ImageReadError(path, err.strerror or err) from None
    if not stat.S_ISREG(mode):
        raise ImageReadError(path, "not a regular file (a folder, pipe, device or socket)")


def luminance(pixels: np.ndarray) -> np.ndarray:
    """CIE L* (float32, H x W) of sRGB pixels, gray (H, W) or colour (H, W, 3), as skimage's rgb2lab gives it."""
    lightness = np.empty(pixels.shape[:2], np.float32)
    rows = max(1, _STRIP_PIXELS // max(1, pixels.shape[1]))
    for top in range(0, len(lightness), rows):  # strips keep the float64 temporaries small
        linear = _srgb_to_linear(pixels[top : top + rows].astype(np.float64))
        y = linear if linear.ndim == 2 else linear @ _SRGB_TO_Y  # the Y row sums to 1: gray v has Y = linear v
        lightness[top : top + rows] = _lightness_of_y(y)
    return lightness


def _srgb_to_linear(value: np.ndarray) -> np.ndarray:
    return np.where(value > 0.04045, ((value + 0.055) / 1.055) ** 2.4, value / 12.92)


def _lightness_of_y(y: np.ndarray) -> np.ndarray:
    """CIE L* of relative luminance Y (white = 1)."""
    return np.where(y > _LAB_EPSILON, 116 * np.cbrt(y) - 16, _LAB_KAPPA * y)


def _lightness_of_codes(samples: np.ndarray, allocate=np.empty) -> np.ndarray:
    """luminance() of integer samples (H, W, 1 or 3) through per-code tables: no float copy of the image."""
    linear_of_code, lightness_of_code = _code_tables(samples.dtype.str)
    return lightness.lightness_of_codes(samples, linear_of_code, lightness_of_code, _SRGB_TO_Y, _lightness_table(),
                                        allocate)


@functools.cache
def _lightness_table() -> np.ndarray:
    """L* at lightness.LIGHTNESS_NODES evenly spaced values of Y from 0 to 1 (float32)."""
    return _lightness_of_y(np.linspace(0, 1, lightness.LIGHTNESS_NODES)).astype(np.float32)


def warm_up() -> None:
    """Compile (or load from numba's cache) the L-from-codes kernels for 8 and 16 bits, gray and colour,
    stored in order and turned by EXIF (a strided view: numba compiles another variant for it)."""
    for dtype in (np.uint8, np.uint16):
        for channels in (1, 3):
            samples = np.zeros((2, 2, channels), dtype)
            _lightness_of_codes(samples)
            _lightness_of_codes(_ORIENTATIONS[6](samples))
        codes = np.zeros((2, 2), dtype)
        codes.flags.writeable = False  # a gray photo's codes as read_lightness hands them over
        lightness.Lightness(codes, _code_tables(codes.dtype.str)[1]).values()


@functools.cache
def _code_tables(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """For every code of an unsigned integer type: its linear light and its L* as a gray value (float32)."""
    codes = np.arange(np.iinfo(np.dtype(dtype)).max + 1)
    linear = _srgb_to_linear(codes / codes[-1])
    return linear.astype(np.float32), _lightness_of_y(linear).astype(np.float32)


def write_image(
    path: str | os.PathLike,
    rgb: np.ndarray,
    *,
    format: str | None = None,
    quality: int = 95,
    exif: bytes | None = None,
    icc_profile: bytes | None = None,
    description: str | None = None,
) -> None:
    """Write (H, W, 3) uint8 or uint16 RGB atomically: 8-bit through Pillow, 16-bit as TIFF or PNG.

    A 16-bit PNG keeps what an 8-bit one keeps (Pillow writes those chunks; libpng the pixels).
    """
    path = Path(path)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"write_image takes (H, W, 3) uint8 or uint16 pixels, not {rgb.shape} {rgb.dtype}")
    fmt = _format(path, format)
    if rgb.dtype == np.uint16 and fmt not in _SIXTEEN_BIT_FORMATS:
        raise ValueError(f"{path}: 16-bit output needs TIFF or PNG; {fmt} is written with 8 bits per channel")
    tags = _output_exif(exif, description)
    if icc_profile is not None and profiles.colour_space(icc_profile) != b"RGB ":
        icc_profile = None  # a gray or CMYK profile would misdescribe RGB pixels
    dpi = _dpi(tags)
    # EXIF as an object: Pillow's TIFF writer would reload bytes as Latin-1 and write '?' for the rest.
    options = {"exif": tags, "icc_profile": icc_profile, "dpi": dpi}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    if fmt == "JPEG" and quality >= 90:
        options["subsampling"] = 0  # full-resolution colour: keep the chroma the model painted
    options = {k: v for k, v in options.items() if v is not None}
    with atomic_write(path) as tmp:
        if rgb.dtype == np.uint8:
            # Pillow writes TIFFs uncompressed here: its libtiff (compressing) writer rejects EXIF sub-IFDs.
            Image.fromarray(rgb).save(tmp, format=fmt, **options)
        elif fmt == "TIFF":
            if any(tags.get_ifd(ifd) for ifd in _SUB_IFDS):
                warnings.warn(f"{path}: a 16-bit TIFF is written without the EXIF and GPS sub-IFDs (capture date, "
                              "exposure, GPS); the PNG and 8-bit outputs keep them", stacklevel=2)
            _write_tiff16(tmp, rgb, tags, icc_profile, dpi)
        else:
            metadata = BytesIO()  # the chunks Pillow writes around one pixel: the same as for 8 bits
            Image.new("RGB", (1, 1)).save(metadata, format=fmt, **options)
            png16.write(tmp, rgb, metadata.getvalue())


def holds_16_bits(path: str | os.PathLike) -> bool:
    """Whether write_image keeps 16 bits per channel in a file named `path` (TIFF and PNG do, JPEG cannot)."""
    return _format(Path(path), None) in _SIXTEEN_BIT_FORMATS


def _jpeg_luma(path: str | os.PathLike, im: Image.Image, allocate=np.empty) -> np.ndarray:
    """The luma plane (H, W, 1) of a JPEG opened as `im`, decoded by libjpeg-turbo through imagecodecs
    straight into `allocate((H, W), uint8)`: Pillow's array is a copy of its own image memory, which at
    3 MP took a third as long again as the decode (10.6 against 7.2 ms here), and never a reused buffer.

    libjpeg fills a truncated file's missing rows with gray and only warns, where Pillow says the file is
    truncated: a file that does not end at its EOI marker goes through Pillow.
    """
    data = Path(path).read_bytes()
    if not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        im.draft("L", im.size)
        return _pillow_samples(im)
    codes = allocate((im.height, im.width), np.uint8)
    imagecodecs.jpeg8_decode(data, outcolorspace="GRAY", out=codes)
    return codes[..., None]


def _gray_jpeg(path: str | os.PathLike, im: Image.Image) -> bool:
    """Whether `im` (opened, not loaded) is a JPEG of a gray photo stored in colour, as many scanners write.

    Such a file's chroma planes hold no signal, so its luma is the gray (R = G = B = Y, code for code:
    checked on the 13 of the 40 historical-dev scans stored so), and decoding the luma alone takes under
    half the time of the colour decode. Told by its DC-only preview at 1/8 scale: every pixel of it gray
    means chroma planes without any signal at that scale, as no colour photograph has. The preview still
    entropy-decodes the whole file: 12 MP here, 79 ms with it against 118 for a gray one, 136 against
    113 for a colour one. Only without a colour profile, or with one that describes sRGB: under
    another, gray codes are no sRGB gray.
    """
    if im.format != "JPEG" or im.mode != "RGB":
        return False
    icc = im.info.get("icc_profile")
    try:
        if icc is not None and not (profiles.colour_space(icc) == b"RGB " and profiles.describes_srgb(icc)):
            return False
        with Image.open(path) as preview:
            preview.draft("RGB", (max(1, preview.width // 8), max(1, preview.height // 8)))
            small = np.asarray(preview)
    except (OSError, profiles.ProfileError, *_DECODE_ERRORS):
        return False  # the full decode reports what is wrong
    return small.ndim == 3 and bool((small[..., 0] == small[..., 1]).all() and (small[..., 1] == small[..., 2]).all())


def _samples(path: str | os.PathLike, im: Image.Image) -> tuple[np.ndarray, bool]:
    """Samples (H, W, C) of the opened image and whether its alpha is premultiplied."""
    if im.format == "PNG" and png16.bit_depth(path) == 16:  # Pillow would keep only 8 of the 16 bits of colour
        samples, exif = png16.read(path)
        # Told what EXIF there is, Pillow's getexif need not decode all the pixels again to find out.
        im.info.setdefault("exif", b"Exif\x00\x00" + exif if exif else b"")
        return samples, False
    stored_bits = 8
    if im.format == "TIFF":
        # tifffile first: it keeps 16-bit colour, and leaves orientation to us (Pillow 13 mis-turns raw TIFFs).
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            stored_bits = page.bitspersample
            if stored_bits in _TIFF_BITS and page.photometric in _TIFF_COLOUR_CHANNELS:
                return _tiff_samples(page)
            if page.photometric == tifffile.PHOTOMETRIC.PALETTE and page.samplesperpixel == 1 and stored_bits <= 16:
                return _tiff_palette_samples(page), False
            if _is_tiff_cmyk(page):
                return _tiff_cmyk_samples(page)
    if im.format == "PPM" and im.mode == "RGB":  # Pillow reads a 16-bit colour PPM with 8 bits
        tile = im.tile[0]
        maxval = tile.args[-1] if isinstance(tile.args, tuple) else 255
        if maxval > 255 and tile.codec_name == "ppm":  # binary P6
            return _ppm16_samples(path, im.size, tile.offset, maxval), False
        stored_bits = 16 if maxval > 255 else 8
    samples = _pillow_samples(im)
    if stored_bits > 8 and samples.dtype == np.uint8:
        message = f"{path}: this {stored_bits}-bit {im.format} is read with 8 bits per channel (Pillow's limit)"
        warnings.warn(message, stacklevel=3)
    return samples, False


def _ppm16_samples(path: str | os.PathLike, size: tuple[int, int], offset: int, maxval: int) -> np.ndarray:
    """A binary colour PPM of maxval 256-65535 (big-endian 16-bit samples from `offset`) as uint16 (H, W, 3)."""
    width, height = size
    count = width * height * 3
    with open(path, "rb") as file:
        file.seek(offset)
        codes = np.frombuffer(file.read(2 * count), ">u2")
    if len(codes) < count:
        raise ValueError("image file is truncated")
    if int(codes.max(initial=0)) > maxval:
        raise ValueError(f"a sample is above the file's maxval {maxval}")
    scaled = codes if maxval == 65535 else (codes.astype(np.uint32) * 65535 + maxval // 2) // maxval
    return scaled.astype(np.uint16).reshape(height, width, 3)


def _tiff_samples(page: tifffile.TiffPage) -> tuple[np.ndarray, bool]:
    """Samples (H, W, C) of a TIFF page, colour then alpha (other extra samples dropped); alpha premultiplied?"""
    samples = page.asarray()
    if samples.dtype == bool:
        samples = samples * np.uint8(255)
    samples = np.moveaxis(samples, page.axes.index("S"), -1) if "S" in page.axes else samples[..., None]
    if samples.ndim != 3:
        raise ValueError(f"unsupported TIFF layout {page.axes}")
    has_alpha = bool(page.extrasamples) and page.extrasamples[0] in _TIFF_ALPHAS
    samples = samples[..., : _TIFF_COLOUR_CHANNELS[page.photometric] + has_alpha]
    if page.photometric == tifffile.PHOTOMETRIC.MINISWHITE:
        top = np.iinfo(samples.dtype).max if samples.dtype.kind == "u" else 1
        samples = samples.copy()
        samples[..., 0] = top - samples[..., 0]
    return samples, has_alpha and page.extrasamples[0] == tifffile.EXTRASAMPLE.ASSOCALPHA


def _tiff_palette_samples(page: tifffile.TiffPage) -> np.ndarray:
    """A palette TIFF's colours (H, W, 1 or 3): gray where the palette is, 16-bit where the indices are deeper
    than 8 bits (an 8-bit palette's 16-bit entries are cut to 8 bits, as Pillow does)."""
    indices = page.asarray()
    colormap = page.colormap
    if indices.dtype == bool:
        indices = indices.astype(np.uint8)
    if page.bitspersample <= 8:
        colormap = (colormap >> 8).astype(np.uint8)
    colormap = colormap.T  # (entries, 3)
    if (colormap == colormap[:, :1]).all():
        colormap = colormap[:, :1]
    return colormap[np.minimum(indices, len(colormap) - 1)]


def _is_tiff_cmyk(page: tifffile.TiffPage) -> bool:
    inkset = page.tags.valueof("InkSet", 1)
    return (page.photometric == tifffile.PHOTOMETRIC.SEPARATED and inkset == 1 and page.samplesperpixel >= 4
            and page.bitspersample in (8, 16))


def _tiff_cmyk_samples(page: tifffile.TiffPage) -> tuple[np.ndarray, bool]:
    """A CMYK TIFF as RGB (H, W, 3, or 4 with alpha) by Pillow's plain formula, R = (1 - C)(1 - K), at the
    file's 8 or 16 bits."""
    samples = np.moveaxis(page.asarray(), page.axes.index("S"), -1)
    top = np.iinfo(samples.dtype).max
    ink = samples[..., :4].astype(np.uint32)
    white = (top - ink[..., 3:4])
    rgb = ((top - ink[..., :3]) * white + top // 2) // top
    has_alpha = bool(page.extrasamples) and page.extrasamples[0] in _TIFF_ALPHAS and samples.shape[-1] > 4
    if has_alpha:
        rgb = np.concatenate([rgb, samples[..., 4:5]], axis=-1)
    return rgb.astype(samples.dtype), has_alpha and page.extrasamples[0] == tifffile.EXTRASAMPLE.ASSOCALPHA


def _pillow_samples(im: Image.Image) -> np.ndarray:
    """Samples (H, W, C) in a mode Pillow decodes without loss: palettes become gray or RGB, CMYK becomes RGB."""
    if im.mode in ("P", "PA"):
        palette = np.asarray(im.getpalette("RGB"), np.uint8).reshape(-1, 3)
        base = "L" if (palette == palette[:, :1]).all() else "RGB"
        im = im.convert(base + "A" if im.has_transparency_data else base)
    elif im.mode == "I":  # Pillow's 32-bit container for 16-bit gray (PPM and older PNG readers)
        return np.clip(np.asarray(im), 0, 65535).astype(np.uint16)[..., None]
    elif im.mode not in _PILLOW_KEPT_MODES:
        im = im.convert({"1": "L", "La": "LA", "RGBa": "RGBA"}.get(im.mode, "RGB"))
    samples = np.asarray(im)
    return samples if samples.ndim == 3 else samples[..., None]


def _orient(samples: np.ndarray, orientation: int) -> np.ndarray:
    turn = _ORIENTATIONS.get(orientation)
    return turn(samples) if turn else samples


def _bit_depth(samples: np.ndarray) -> int:
    """8 or 16: the precision of the stored samples (floats count as 16)."""
    if samples.dtype.kind not in "uf":
        raise ValueError(f"unsupported sample type {samples.dtype}")
    return 8 if samples.dtype == np.uint8 else 16


def _to_unit(samples: np.ndarray, premultiplied: bool) -> np.ndarray:
    """Float32 C-ordered pixels in [0, 1]; alpha composited on white; one channel -> (H, W)."""
    top = np.iinfo(samples.dtype).max if samples.dtype.kind == "u" else 1
    pixels = samples.astype(np.float32, order="C")
    if top == 1:
        np.clip(pixels, 0, 1, out=pixels)
    else:
        pixels /= top
    if pixels.shape[2] in (2, 4):
        colour, alpha = pixels[..., :-1], pixels[..., -1:]
        pixels = colour + (1 - alpha) if premultiplied else colour * alpha + (1 - alpha)
    return pixels[..., 0] if pixels.shape[2] == 1 else pixels


def _output_exif(exif: bytes | None, description: str | None) -> Image.Exif:
    """EXIF for a written photo: the given tags, orientation 1, `description` and our Software tag."""
    source = Image.Exif()
    if exif:
        source.load(exif)
    tags = _portable_exif(source)
    if description is not None:
        tags[_Tag.ImageDescription] = description.encode()  # UTF-8 bytes: Pillow writes non-ASCII str as '?'
    tags[_Tag.Software] = SOFTWARE
    return tags


def _portable_exif(exif: Image.Exif, keep: frozenset[int] | None = None) -> Image.Exif:
    """`exif` made ready for another file, in place: first IFD limited to `keep`, orientation 1."""
    for tag, value in list(exif.items()):
        if keep is not None and tag not in keep and tag not in _SUB_IFDS:
            del exif[tag]
        elif isinstance(value, str) and TiffTags.lookup(tag).type == TiffTags.ASCII:
            # Pillow decodes text as Latin-1 but writes str as ASCII ('?' for the rest): bytes go through as is.
            exif[tag] = value.encode("latin-1", "replace")
    if _Tag.Orientation in exif:
        exif[_Tag.Orientation] = 1
    return exif


def _exif_bytes(tags: Image.Exif) -> bytes | None:
    try:
        return tags.tobytes()
    except Exception as err:  # EXIF from other software may hold what Pillow cannot write: not worth the photo
        warnings.warn(f"EXIF dropped: Pillow cannot write it back ({err})", stacklevel=3)
        return None


def _density(im: Image.Image) -> tuple[float, float] | None:
    """The resolution a JPEG's JFIF header or a PNG's pHYs chunk gives, in dpi, if it has a unit."""
    if im.format == "JPEG" and im.info.get("jfif_unit") not in (1, 2):
        return None  # 0: an aspect ratio only
    return im.info.get("dpi")


def _resolution_into_exif(tags: Image.Exif, dpi: tuple[float, float] | None) -> None:
    """Carry a resolution that the file gives outside EXIF (JPEG's JFIF density, PNG's pHYs) as EXIF tags,
    which the writer reads; EXIF's own, where there is one, wins, even without a unit (Pillow's `dpi` then
    repeats it as if in inches)."""
    if _Tag.XResolution in tags or not dpi:
        return
    try:
        x, y = (round(float(value), 2) for value in dpi)  # pHYs counts per metre: 300 dpi reads as 299.9994
    except (TypeError, ValueError):
        return
    if x > 0 and y > 0:
        tags[_Tag.XResolution], tags[_Tag.YResolution], tags[_Tag.ResolutionUnit] = x, y, 2


def _dpi(tags: Image.Exif) -> tuple[float, float] | None:
    """Resolution in dots per inch from EXIF, when it gives a valid one (unit inch or cm; unit 1, none, gives
    only an aspect ratio)."""
    try:
        x, y = float(tags[_Tag.XResolution]), float(tags[_Tag.YResolution])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    unit = tags.get(_Tag.ResolutionUnit, 2)
    if not (x > 0 and y > 0) or unit not in (2, 3):
        return None
    return (x * 2.54, y * 2.54) if unit == 3 else (x, y)


def _write_tiff16(
    path: Path, rgb: np.ndarray, tags: Image.Exif, icc_profile: bytes | None, dpi: tuple[float, float] | None
) -> None:
    """16-bit RGB TIFF, deflate with predictor; keeps ICC, resolution and EXIF text, not EXIF sub-IFDs."""
    tifffile.imwrite(
        path,
        rgb,
        photometric="rgb",
        compression="zlib",
        # Level 1 in parallel strips: 2.8x faster than level 6 on one thread, files within 1 % of its size.
        compressionargs={"level": 1},
        maxworkers=os.cpu_count(),
        predictor=True,
        iccprofile=icc_profile,
        description=tags.get(_Tag.ImageDescription),
        software=SOFTWARE,
        resolution=dpi,
        resolutionunit="INCH" if dpi else None,
        metadata=None,  # no tifffile JSON in ImageDescription
        extratags=[(tag, "s", 0, _text_bytes(tags[tag]), True) for tag in _TIFF_TEXT_TAGS if tag in tags],
    )


def _text_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _format(path: Path, format: str | None) -> str:
    """Pillow's format name: `format` (JPG and TIF accepted) or the one the suffix of `path` implies."""
    extensions = Image.registered_extensions()  # also loads every plugin, so Image.SAVE is complete
    if format is None:
        format = extensions.get(path.suffix.lower())
        if format is None:
            raise ValueError(f"{path}: cannot tell the image format from {path.suffix!r}; use .jpg, .png or .tif")
    format = {"JPG": "JPEG", "TIF": "TIFF"}.get(format.upper(), format.upper())
    if format not in Image.SAVE:
        raise ValueError(f"{path}: cannot write {format} images")
    return format
