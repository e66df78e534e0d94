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


def bilinear_rows(low, full_height, full_width, row_start, row_stop):
    """Bilinear upsampling of `low` [B,C,h,w] to full size, computed only for rows [row_start, row_stop).

    Matches F.interpolate(..., mode="bilinear", align_corners=False) on those rows, so a large image
    can be processed in strips without a full-size temporary.
    """
    rows = torch.arange(row_start, row_stop, device=low.device, dtype=low.dtype)
    cols = torch.arange(full_width, device=low.device, dtype=low.dtype)
    grid_y = (2 * rows + 1) / full_height - 1
    grid_x = (2 * cols + 1) / full_width - 1
    grid = torch.stack(torch.meshgrid(grid_y, grid_x, indexing="ij")[::-1], dim=-1)
    grid = grid.unsqueeze(0).expand(low.shape[0], -1, -1, -1)
    return F.grid_sample(low, grid, mode="bilinear", padding_mode="border", align_corners=False)


def guided_upsample_rows(slope, offset, guide_rows, full_width, full_height, row_start):
    """Apply the fitted coefficients to full-resolution guide rows [B,1,rows,W] -> ab rows [B,2,rows,W]."""
    row_stop = row_start + guide_rows.shape[-2]
    slope_rows = bilinear_rows(slope, full_height, full_width, row_start, row_stop)
    offset_rows = bilinear_rows(offset, full_height, full_width, row_start, row_stop)
    return slope_rows * guide_rows + offset_rows


def guided_upsample(ab_low, guide_low, guide_full, radius=2, eps=1e-3):
    """Upsample ab_low [B,2,h,w] to guide_full's size [B,1,H,W], following the guide's edges."""
    slope, offset = guided_coefficients(guide_low, ab_low, radius, eps)
    height, width = guide_full.shape[-2:]
    return guided_upsample_rows(slope, offset, guide_full, width, height, 0)
