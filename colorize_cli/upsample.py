"""Edge-aware chroma upsampling: a fast guided filter (He et al. 2013; Wu et al. 2018) led by L.

The network predicts `ab` at a working size. Plain bilinear upsampling smears colour across edges;
here `ab` is modelled locally as a linear function of L, fitted at the working size, and that
function is applied to the full-resolution L, so colour edges snap to the luminance edges.
"""

import torch
import torch.nn.functional as F


def _box_mean(x, radius):
    """Mean over a (2r+1)^2 window, edges handled by averaging only the pixels inside."""
    size = 2 * radius + 1
    ones = torch.ones_like(x[:, :1])
    total = F.avg_pool2d(F.pad(x, [radius] * 4), size, stride=1, divisor_override=1)
    count = F.avg_pool2d(F.pad(ones, [radius] * 4), size, stride=1, divisor_override=1)
    return total / count


def guided_coefficients(guide_low, ab_low, radius=2, eps=1e-3):
    """Fit ab ~ A*guide + b in every window at the working size; returns smoothed (A, b), each [B,2,h,w].

    `guide_low` is L scaled to [0, 1] at the working size ([B,1,h,w]); eps sets how strongly flat
    regions are smoothed rather than following the guide.
    """
    mean_guide = _box_mean(guide_low, radius)
    mean_ab = _box_mean(ab_low, radius)
    cov = _box_mean(guide_low * ab_low, radius) - mean_guide * mean_ab
    var = _box_mean(guide_low * guide_low, radius) - mean_guide * mean_guide
    slope = cov / (var + eps)
    offset = mean_ab - slope * mean_guide
    return _box_mean(slope, radius), _box_mean(offset, radius)


def guided_upsample(ab_low, guide_low, guide_full, radius=2, eps=1e-3):
    """Upsample ab_low [B,2,h,w] to guide_full's size [B,1,H,W], following the guide's edges.

    The reference form; `render` applies the same coefficients fused with the colour conversion, in strips.
    """
    slope, offset = guided_coefficients(guide_low, ab_low, radius, eps)
    size = guide_full.shape[-2:]
    slope, offset = (F.interpolate(x, size=size, mode="bilinear", align_corners=False) for x in (slope, offset))
    return slope * guide_full + offset
