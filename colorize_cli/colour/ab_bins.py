"""The 313 in-gamut ab bins of Zhang et al. 2016: soft encoding, annealed-mean decoding, class rebalancing."""

import functools
import math

import torch
from torch import Tensor

import torch.nn.functional as F

from colorize_cli.colour.lab import ab_to_unit, rgb_to_lab

BIN_WIDTH = 10.0
NUM_BINS = 313


@functools.cache
def bin_centers() -> Tensor:
    """The (a, b) centres of the 313 bins, float32 [313, 2], ordered by a then b like Zhang's pts_in_hull."""
    # Zhang's set ("pts_in_hull") is every grid point that is a corner of a grid cell meeting the convex
    # hull of the sRGB gamut's ab projection, so the four grid neighbours of any in-gamut colour are bins.
    # Equivalently: the grid points inside that hull grown by the square [-10, 10]^2, tested through support
    # functions (a point is outside a convex set iff it lies beyond the set's support line in some direction).
    # The gamut's extreme ab values sit on the RGB cube's corners and edges, which a coarse lattice samples
    # exactly. The closest call, (80, 80), lies 0.05 outside, so this runs in float64.
    v = torch.linspace(0, 1, 33, dtype=torch.float64)
    rgb = torch.stack(torch.meshgrid(v, v, v, indexing="ij")).reshape(3, 1, -1)
    gamut_ab = rgb_to_lab(rgb)[1:].reshape(2, -1).T
    angles = torch.arange(720, dtype=torch.float64) * (2 * math.pi / 720)
    directions = torch.stack([angles.cos(), angles.sin()], dim=1)
    support = (gamut_ab @ directions.T).amax(dim=0) + BIN_WIDTH * directions.abs().sum(dim=1)
    grid = torch.arange(-110, 111, BIN_WIDTH, dtype=torch.float64)
    points = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), dim=-1).reshape(-1, 2)
    centers = points[((points @ directions.T) <= support).all(dim=1)]
    if len(centers) != NUM_BINS:
        raise RuntimeError(f"derived {len(centers)} ab bins instead of {NUM_BINS}")
    return centers.float()


def _centers_like(x: Tensor) -> Tensor:
    return bin_centers().to(x)


def _squared_distances(ab: Tensor) -> Tensor:
    """|ab - c_q|^2 for every pixel of ab [B, 2, H, W] and bin q: [B, 313, H, W]."""
    centers = _centers_like(ab)
    # expanded form: never materialises a [B, 313, 2, H, W] difference tensor
    cross = torch.einsum("qc,bchw->bqhw", centers, ab)
    return (ab * ab).sum(dim=1, keepdim=True) - 2 * cross + (centers * centers).sum(dim=1)[:, None, None]


def soft_encode(ab: Tensor, neighbours: int = 5, sigma: float = 5.0) -> Tensor:
    """Soft one-hot targets [B, 313, H, W]: Gaussian weights on the nearest bins, summing to 1 per pixel."""
    neg_d2, nearest = (-_squared_distances(ab)).topk(neighbours, dim=1)
    weights = torch.softmax(neg_d2 / (2 * sigma**2), dim=1)
    return torch.zeros(ab.shape[0], NUM_BINS, *ab.shape[2:], dtype=ab.dtype, device=ab.device).scatter_(
        1, nearest, weights
    )


@functools.cache
def _grid_table() -> tuple[Tensor, Tensor]:
    """(origin, table): table[i, j] is the bin at grid point origin + BIN_WIDTH * (i, j), or -1 for none."""
    centers = bin_centers().double()
    origin = centers.min(dim=0).values
    cells = ((centers - origin) / BIN_WIDTH).round().long()
    table = torch.full(tuple((cells.max(dim=0).values + 1).tolist()), -1, dtype=torch.long)
    table[cells[:, 0], cells[:, 1]] = torch.arange(NUM_BINS)
    return origin, table


def hard_encode(ab: Tensor) -> Tensor:
    """Index of the nearest bin for every pixel of ab [B, 2, H, W]: LongTensor [B, H, W]."""
    # The bins lie on a square grid, so the nearest grid point is the nearest bin whenever it is a bin
    # (always for in-gamut colours): a table look-up; only the other pixels pay for 313 distances.
    origin, table = (t.to(ab.device) for t in _grid_table())
    cells = ((ab.double() - origin[None, :, None, None]) / BIN_WIDTH).round().long()
    limits = torch.tensor(table.shape, device=ab.device)[None, :, None, None]
    inside = ((cells >= 0) & (cells < limits)).all(dim=1)
    classes = torch.full(inside.shape, -1, dtype=torch.long, device=ab.device)
    classes[inside] = table[cells[:, 0][inside], cells[:, 1][inside]]
    rest = classes < 0
    if rest.any():
        pixels = ab.permute(0, 2, 3, 1)[rest].T[None, :, :, None]
        classes[rest] = _squared_distances(pixels).argmin(dim=1)[0, :, 0]
    return classes


def annealed_mean(logits: Tensor, temperature: float = 0.38) -> Tensor:
    """Decode logits [B, 313, H, W] to Lab ab [B, 2, H, W]: T=1 is the mean, T->0 the mode."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    probs = torch.softmax(logits / temperature, dim=1)
    return torch.einsum("bqhw,qc->bchw", probs, _centers_like(logits))


def decode_to_unit(logits: Tensor, temperature: float, size) -> Tensor:
    """Logits [B, 313, h, w] to unit-scale ab [B, 2, *size]: the annealed mean, then upsampled (the 2
    decoded channels, far cheaper than the 313 logits, and still in range)."""
    ab = annealed_mean(logits, temperature)
    return ab_to_unit(F.interpolate(ab, size=tuple(size), mode="bilinear", align_corners=False))


def ab_histogram(ab: Tensor) -> Tensor:
    """Pixel counts per bin (nearest bin) of ab [B, 2, H, W]: LongTensor [313]."""
    return torch.bincount(hard_encode(ab).flatten(), minlength=NUM_BINS)


def smoothed_prior(counts: Tensor, sigma: float = 5.0) -> Tensor:
    """Empirical bin distribution smoothed by a Gaussian of width sigma over the ab plane, summing to 1."""
    if counts.sum() <= 0:
        raise ValueError("cannot estimate the ab prior from an empty histogram")
    p = counts.double() / counts.sum()
    centers = bin_centers().double()
    kernel = torch.exp(-torch.cdist(centers, centers) ** 2 / (2 * sigma**2))
    smoothed = kernel @ p
    return (smoothed / smoothed.sum()).to(counts.device, torch.float32)


def rebalance_weights(prior: Tensor, lam: float = 0.5) -> Tensor:
    """Class weights w ∝ ((1-lam) p + lam/Q)^-1, scaled so that E_p[w] = 1."""
    w = 1.0 / ((1 - lam) * prior + lam / prior.numel())
    return w / (prior * w).sum()
