"""Inference: L at full resolution in, colour out, with the network at a small working size."""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from colorize_cli.colour import render as render_module
from colorize_cli.colour import shrink_kernel, upsample
from colorize_cli.colour.lab import normalize_l, unit_to_ab
from colorize_cli.colour.render import fold_coefficients, render
from colorize_cli.colour.shrink_kernel import shrink_lightness
from colorize_cli.colour.upsample import guided_coefficients, guided_upsample
from colorize_cli.models.checkpoint import CheckpointError, file_sha256, load_checkpoint
from colorize_cli.models.inference_tuning import (
    autocast,
    autocast_dtype,
    cast_weights,
    pack_weights,
    tune_for_inference,
)
from colorize_cli.photos import io as photo_io
from colorize_cli.photos.lightness import Lightness

# The default --model: the best shipped model by the README's quality table.
DEFAULT_MODEL = "gan"
# Longest side of the working size, in render sizes: panoramas up to 16:1 keep their full working detail.
MAX_ASPECT = 16


# colorize_cli/ of this installation: a wheel carries the weights inside it, a source checkout beside it.
_PACKAGE = Path(__file__).resolve().parents[1]


def weights_dir():
    """Folder of the shipped weights: $COLORIZE_WEIGHTS, else the installed package's colorize_cli/weights
    (a wheel), else the repository's weights/ (a source checkout or editable install)."""
    override = os.environ.get("COLORIZE_WEIGHTS")
    if override:
        return Path(override)
    installed = _PACKAGE / "weights"
    return installed if installed.is_dir() else _PACKAGE.parent / "weights"


def resolve_weights(name_or_path):
    """A checkpoint path, or a bare model name meaning weights/<name>.safetensors."""
    candidate = Path(name_or_path)
    if candidate.suffix or os.sep in str(name_or_path):
        return candidate
    shipped = weights_dir() / f"{name_or_path}.safetensors"
    if not shipped.is_file():
        raise CheckpointError(
            f"no shipped weights for model {name_or_path!r} ({shipped} is missing); "
            "train them with `colorize train` or pass a checkpoint path"
        )
    return shipped


class NonFiniteColour(ArithmeticError):
    """The network's ab for an image holds NaN or infinity (that image fails; the batch goes on)."""


@dataclass
class LowResolution:
    """What the network saw and said: L in [0,1] and ab in Lab units, both at the working size."""

    guide: torch.Tensor
    ab: torch.Tensor

    def split(self):
        """One LowResolution per image of the batch."""
        return [LowResolution(guide, ab) for guide, ab in zip(self.guide.split(1), self.ab.split(1))]


class Colorizer:
    """A loaded model plus the inference options: working size, saturation, device."""

    def __init__(self, model, device="cpu", render_size=None, saturation=1.0, header=None, precision="fp32"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.autocast_dtype = autocast_dtype(precision, self.device)
        cast_weights(self.model, self.autocast_dtype)
        self.render_size = int(render_size or model.default_render_size)
        if self.autocast_dtype == torch.bfloat16:
            side = self.working_size(self.render_size, self.render_size)
            pack_weights(self.model, torch.zeros(1, 1, *side, device=self.device).contiguous(
                memory_format=torch.channels_last))
        self.saturation = float(saturation)
        self.header = header or {}
        self.checkpoint_path = None
        self.checkpoint_sha256 = None

    @classmethod
    def from_checkpoint(cls, name_or_path, device="cpu", render_size=None, saturation=1.0, precision="auto"):
        """Load shipped weights by model name, or any checkpoint by path, tuned for inference.

        precision: "auto" runs the network in bf16 where the device has it natively, "fp32" never.
        """
        path = resolve_weights(name_or_path)
        model, header = load_checkpoint(path, device)
        colorizer = cls(tune_for_inference(model), device, render_size, saturation, header, precision)
        # The compiled kernels now, not inside the first photo; photos are read on the CPU whatever the device.
        render_module.warm_up(colorizer.device)
        if colorizer.device.type == "cpu":
            shrink_kernel.warm_up()
        upsample.warm_up(colorizer.device)
        photo_io.warm_up()
        colorizer.checkpoint_path = path
        colorizer.checkpoint_sha256 = file_sha256(path)
        return colorizer

    def working_size(self, height, width):
        """Network input size: the short side scaled to render_size (never up), rounded to the model's
        multiple, and at least two multiples, so that the deepest feature map is never one pixel thin;
        the long side at most MAX_ASPECT render sizes (a 1x100000 strip needs no 6 MP network pass)."""
        scale = min(1.0, self.render_size / min(height, width))
        multiple = self.model.size_multiple
        longest = MAX_ASPECT * self.render_size

        # A 1-pixel-wide bf16 channels-last convolution in oneDNN returned NaN rows at random (cnn on a
        # 2000x3 photo: 304x8 in, 38x1 at its deepest); two multiples keep every map at least 2 px.
        def snap(side):
            return max(2 * multiple, int(round(min(side * scale, longest) / multiple)) * multiple)

        return snap(height), snap(width)

    @torch.inference_mode()
    def predict_low(self, L):
        """Run the network on L [B,1,H,W] (Lab units, any device) resized to the working size."""
        L = L.to(self.device, torch.float32)
        size = self.working_size(*L.shape[-2:])
        if tuple(L.shape[-2:]) == size:
            small = L
        else:
            small = F.interpolate(L, size=size, mode="bilinear", antialias=True, align_corners=False)
        return self._predict_small(small)

    @torch.inference_mode()
    def predict_low_of(self, lightness):
        """predict_low of one photo's photos.lightness.Lightness. On the CPU its samples (codes or L) go to
        the working size in one compiled pass (shrink_kernel), with the filter predict_low uses."""
        size = self.working_size(*lightness.shape)
        if self.device.type != "cpu" or size[0] > lightness.shape[0] or size[1] > lightness.shape[1]:
            return self.predict_low(torch.from_numpy(lightness.values())[None, None])
        small = shrink_lightness(lightness.samples, size, lightness.lightness_of_code)
        return self._predict_small(torch.from_numpy(small)[None, None])

    def _predict_small(self, small):
        """The network on L [B,1,h,w] (Lab units) already at the working size."""
        with autocast(self.device, self.autocast_dtype):
            unit_ab = self.model.predict_ab(normalize_l(small).contiguous(memory_format=torch.channels_last))
        ab = unit_to_ab(unit_ab.float().contiguous())
        if not torch.isfinite(ab).all():
            # A second line of defence: NaN would become an out-of-range table index in the renderer.
            height, width = small.shape[-2:]
            raise NonFiniteColour(f"the network returned non-finite colour at working size {height}x{width}")
        return LowResolution(guide=small / 100.0, ab=ab)

    @torch.inference_mode()
    def predict_ab(self, L):
        """Full-resolution ab [B,2,H,W] (Lab units) for L [B,1,H,W], on the colorizer's device."""
        low = self.predict_low(L)
        return guided_upsample(low.ab, low.guide, L.to(self.device, torch.float32) / 100.0) * self.saturation

    @torch.inference_mode()
    def colorize_l(self, L, bit_depth=None, low=None, allocate=np.empty):
        """Colour a single L image (H,W) float [0,100] numpy array, in strips of rows.

        Returns float32 sRGB in [0,1] (H,W,3), or uint8/uint16 when bit_depth is 8/16, which saves
        the full-size float temporary on large scans. `low` reuses an earlier predict_low of this L;
        `allocate(shape, dtype)` gives the output array on the CPU (a batch worker's scratch).
        """
        L = np.ascontiguousarray(L, dtype=np.float32)
        if not np.isfinite(L).all():  # the guided filter's running sums would carry a NaN to the image's edge
            raise ValueError("L holds NaN or infinity; give finite lightness in [0, 100]")
        return self.colorize_lightness(Lightness(L), bit_depth, low, allocate)

    @torch.inference_mode()
    def colorize_lightness(self, lightness, bit_depth=None, low=None, allocate=np.empty):
        """colorize_l of a photos.lightness.Lightness: a gray photo's codes are rendered as they are."""
        if low is None:
            low = self.predict_low_of(lightness).split()[0]
        folded = fold_coefficients(*guided_coefficients(low.guide, low.ab), self.saturation)
        return render(lightness.samples, folded, bit_depth, self.device, lightness.lightness_of_code, allocate)
