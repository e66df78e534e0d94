"""One photo made ready for training: decoded to sRGB, oriented, resized, filtered and summarised.

`decode_photo` serves both prep-dataset and the plain-folder reader, so both see the same pixels.
"""

import io
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from colorize_cli.colour.ab_bins import ab_histogram
from colorize_cli.colour.lab import rgb_to_lab
from colorize_cli.prep.perceptual_hash import dhash

CROPS = ("none", "center", "random")
AB_SAMPLES = 1024  # pixels per image in the ab histogram (a strided grid: no averaging, no desaturation)
CHROMA_SIDE = 32  # short side of the box-filtered thumbnail the chroma filter measures (averages out grain)


class PhotoError(ValueError):
    """A photo rejected for `reason` (a short counter key such as 'unreadable' or 'too_small')."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class PhotoOptions:
    """Target size and filter thresholds; the defaults suit 128-px training crops."""

    size: int = 256  # short side after resizing; smaller photos are kept as they are, never enlarged
    min_size: int = 128  # short side below which a photo is rejected as too small
    crop: str = "none"  # or a centre / random square crop of the resized photo
    max_aspect: float = 3.0
    min_chroma: float = 1.0  # Lab units, see chroma_spread; 1.0 keeps 99.3% of photos-train
    max_pixels: int = Image.MAX_IMAGE_PIXELS  # decompression-bomb limit, checked before decoding


@dataclass
class PreparedPhoto:
    """Pixels ready for a shard, with what dedup and the ab statistics need."""

    pixels: np.ndarray  # uint8 (H, W, 3) sRGB
    dhash: int
    ab_counts: np.ndarray  # int64 [313]: a strided sample's pixels per ab bin


@lru_cache(maxsize=1)
def _srgb_profile():
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def open_photo(data, max_pixels=Image.MAX_IMAGE_PIXELS):
    """Identify an image from its bytes without decoding its pixels; PhotoError if it is not one or too big."""
    try:
        with warnings.catch_warnings():  # the size check below decides; Pillow need not warn first
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise PhotoError("too_large_image", str(err)) from None
    except UnidentifiedImageError:
        raise PhotoError("unreadable", "not an image file") from None  # Pillow's message names a BytesIO
    except (OSError, ValueError, SyntaxError) as err:
        raise PhotoError("unreadable", str(err)) from None
    width, height = image.size
    if width * height > max_pixels:
        raise PhotoError("too_large_image", f"{width}x{height} pixels is over the limit of {max_pixels}")
    return image


def to_srgb(image, short_side):
    """Decode an opened image into uint8 sRGB (H, W, 3): EXIF orientation, ICC profile, short side <= short_side."""
    width, height = image.size
    scale = short_side / min(width, height)
    try:
        if scale < 1:
            # JPEG decodes straight at 1/2, 1/4 or 1/8 size: far faster for big photos, no quality loss here.
            image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
        icc = image.info.get("icc_profile")
        image = ImageOps.exif_transpose(image)
        if icc and image.mode in ("RGB", "CMYK"):
            image = _icc_to_srgb(image, icc)
        image = image.convert("RGB")
        if scale < 1:
            image = _resize_short_side(image, short_side, Image.Resampling.LANCZOS)
        return np.asarray(image, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise PhotoError("unreadable", str(err)) from None


def _resize_short_side(image, side, resample):
    # The scale is taken from the image as it is now: draft() may already have shrunk it.
    scale = side / min(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, resample, reducing_gap=3.0 if scale < 1 else None)


def _icc_to_srgb(image, icc):
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(image, source, _srgb_profile(), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a broken profile is ignored, as browsers do: the pixels are taken as sRGB


def decode_photo(data, short_side, max_pixels=Image.MAX_IMAGE_PIXELS):
    """Bytes to uint8 sRGB (H, W, 3) with the short side at most `short_side`; PhotoError if unusable."""
    return to_srgb(open_photo(data, max_pixels), short_side)


def chroma_spread(ab):
    """Colour beyond a single tint, in Lab units, of ab [2, ...]: 0 for grey, sepia and other toned prints.

    Toned prints put every pixel's ab on one half-line from the grey axis (one hue, varying strength).
    The score is the larger of the ab cloud's extent across its main axis and its extent along that axis
    on the weaker side: colour photos spread across the line or to both sides of it (blue jeans on a
    beige floor lie on one line, on opposite sides).
    """
    ab = ab.reshape(2, -1).double()
    variances, axes = torch.linalg.eigh(ab @ ab.T / ab.shape[1])
    along = axes[:, 1] @ ab
    weaker_side = min(along.clamp(min=0).square().mean(), along.clamp(max=0).square().mean())
    return float(max(variances[0].clamp(min=0), weaker_side).sqrt())


def _ab(pixels):
    return rgb_to_lab(torch.from_numpy(np.array(pixels)).permute(2, 0, 1).float() / 255)[1:]


def _thumbnail(pixels, side):
    return np.asarray(_resize_short_side(Image.fromarray(pixels), side, Image.Resampling.BOX))


def _strided(pixels, samples):
    step = max(1, int(math.sqrt(pixels.shape[0] * pixels.shape[1] / samples)))
    return pixels[::step, ::step]


def _crop(pixels, crop, digest):
    if crop == "none":
        return pixels
    height, width = pixels.shape[:2]
    side = min(height, width)
    if crop == "center":
        top, left = (height - side) // 2, (width - side) // 2
    else:  # random, but fixed by the content so that reruns and resumes agree
        rng = np.random.default_rng(int(digest[:16], 16))
        top, left = int(rng.integers(height - side + 1)), int(rng.integers(width - side + 1))
    return pixels[top : top + side, left : left + side]


def prepare_photo(data, digest, options):
    """Decode and filter one photo (`digest`: its content hash); PreparedPhoto, or PhotoError with a reason."""
    image = open_photo(data, options.max_pixels)
    width, height = image.size
    if min(width, height) < options.min_size:
        raise PhotoError("too_small", f"{width}x{height}")
    if max(width, height) > options.max_aspect * min(width, height):
        raise PhotoError("extreme_aspect", f"{width}x{height}")
    pixels = _crop(to_srgb(image, options.size), options.crop, digest)
    if chroma_spread(_ab(_thumbnail(pixels, CHROMA_SIDE))) < options.min_chroma:
        raise PhotoError("grayscale_or_sepia")
    counts = ab_histogram(_ab(_strided(pixels, AB_SAMPLES))[None]).to(torch.int64).numpy()
    return PreparedPhoto(np.ascontiguousarray(pixels), dhash(pixels), counts)
