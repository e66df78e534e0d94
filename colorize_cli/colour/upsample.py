"""Edge-aware chroma upsampling: a fast guided filter (He et al. 2013; Wu et al. 2018) led by L.

The network predicts `ab` at a working size. Plain bilinear upsampling smears colour across edges;
here `ab` is modelled locally as a linear function of L, fitted at the working size, and that
function is applied to the full-resolution L, so colour edges snap to the luminance edges.
"""

import numpy as np
import torch
import torch.nn.functional as F

from colorize_cli.colour import guided_kernel


def _box_sum(x, radius):
    """Sum over a (2r+1)^2 window (zeros outside) by running sums: O(1) per pixel, unlike avg_pool2d's O(r^2)."""
    size = 2 * radius + 1
    x = F.pad(x, [radius + 1, radius, radius + 1, radius])  # one more zero in front: sums become differences
    x = x.cumsum(-1)
    x = x[..., size:] - x[..., :-size]
    x = x.cumsum(-2)
    return x[..., size:, :] - x[..., :-size, :]


def guided_coefficients(guide_low, ab_low, radius=2, eps=1e-3):
    """Fit ab ~ A*guide + b in every window at the working size; returns smoothed (A, b), each [B,2,h,w].

    `guide_low` is L scaled to [0, 1] at the working size ([B,1,h,w]); eps sets how strongly flat
    regions are smoothed rather than following the guide. On the CPU a compiled pass does it
    (guided_kernel); elsewhere, and as its reference, torch (guided_coefficients_with_torch).
    """
    if guide_low.device.type != "cpu" or guide_low.requires_grad or ab_low.requires_grad:
        return guided_coefficients_with_torch(guide_low, ab_low, radius, eps)
    guides = guide_low.detach().float().numpy()
    abs_ = ab_low.detach().float().numpy()
    slope = np.empty(abs_.shape, np.float32)
    offset = np.empty(abs_.shape, np.float32)
    for index in range(len(guides)):
        guided_kernel.fit(guides[index, 0], abs_[index], radius, eps, slope[index], offset[index])
    dtype = guide_low.dtype
    return torch.from_numpy(slope).to(dtype), torch.from_numpy(offset).to(dtype)


def guided_coefficients_with_torch(guide_low, ab_low, radius=2, eps=1e-3):
    """guided_coefficients by torch calls: the path for CUDA (and autograd), the compiled kernel's reference."""
    dtype = guide_low.dtype
    # float64: the running sums and the variance E[g^2] - E[g]^2 cancel; the working size keeps this cheap
    guide, ab = guide_low.double(), ab_low.double()
    # window means only over the pixels inside the image
    count = _box_sum(torch.ones_like(guide[:1]), radius)
    means = _box_sum(torch.cat([guide, ab, guide * ab, guide * guide], dim=1), radius) / count
    mean_guide, mean_ab, mean_product, mean_square = means.split([1, 2, 2, 1], dim=1)
    slope = (mean_product - mean_guide * mean_ab) / (mean_square - mean_guide * mean_guide + eps)
    offset = mean_ab - slope * mean_guide
    smooth = _box_sum(torch.cat([slope, offset], dim=1), radius) / count
    return smooth[:, :2].to(dtype), smooth[:, 2:].to(dtype)


def guided_upsample(ab_low, guide_low, guide_full, radius=2, eps=1e-3):
    """Upsample ab_low [B,2,h,w] to guide_full's size [B,1,H,W], following the guide's edges.

    The reference form; `render` applies the same coefficients fused with the colour conversion, in strips.
    """
    slope, offset = guided_coefficients(guide_low, ab_low, radius, eps)
    size = guide_full.shape[-2:]
    slope, offset = (F.interpolate(x, size=size, mode="bilinear", align_corners=False) for x in (slope, offset))
    return slope * guide_full + offset


def warm_up(device="cpu") -> None:
    """Compile (or load from numba's cache) the CPU fit now, not inside the first photo (other devices
    fit with torch and need none)."""
    if torch.device(device).type == "cpu":
        guided_coefficients(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, 2))
