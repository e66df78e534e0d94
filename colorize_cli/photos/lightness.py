"""CIE L* of integer samples through per-code tables, compiled: one pass, no temporaries of image size.

Gray samples need one look-up per pixel. numpy's take first widens a uint8 index to 64 bits (eight
bytes written and read per pixel before the look-up): 41 ms for 12 MP here, against about 8 for this loop.
Colour samples take three look-ups of linear light, the luminance weights, and L* of Y interpolated in
a table (a cube root per pixel costs more than everything else together).
A photo turned by EXIF comes as a transposed view of the stored samples, whose rows are the stored
columns: it goes in tiles of 64 x 1024 pixels, so that each cache line read serves 64 rows (12 MP here:
13 ms against 51 in plain row loops, which stored samples keep: 8 ms against 10 in tiles).
"""

from dataclasses import dataclass

import numpy as np

from colorize_cli.colour.jit import compiled

# Nodes of the L*(Y) table: linear interpolation between them errs by under 1e-5 L* (worst just above
# CIE's epsilon, where the curve bends most).
LIGHTNESS_NODES = 1 << 16


TILE_ROWS, TILE_COLUMNS = 64, 1024


@compiled
def _gray(codes, lightness_of_code, tile_rows, tile_columns, out):
    height, width = out.shape
    for top in range(0, height, tile_rows):
        for left in range(0, width, tile_columns):
            for y in range(top, min(top + tile_rows, height)):
                for x in range(left, min(left + tile_columns, width)):
                    out[y, x] = lightness_of_code[codes[y, x, 0]]


@compiled
def _colour(codes, linear_of_code, weights, lightness_of_y, tile_rows, tile_columns, out):
    height, width = out.shape
    r, g, b = weights[0], weights[1], weights[2]
    last = lightness_of_y.size - 1
    for top in range(0, height, tile_rows):
        for left in range(0, width, tile_columns):
            for y in range(top, min(top + tile_rows, height)):
                for x in range(left, min(left + tile_columns, width)):
                    luminance = (r * linear_of_code[codes[y, x, 0]] + g * linear_of_code[codes[y, x, 1]]
                                 + b * linear_of_code[codes[y, x, 2]])
                    position = min(max(luminance, np.float32(0)), np.float32(1)) * np.float32(last)
                    node = min(np.int64(position), last - 1)
                    lower = lightness_of_y[node]
                    out[y, x] = lower + (position - np.float32(node)) * (lightness_of_y[node + 1] - lower)


def lightness_of_codes(samples, linear_of_code, lightness_of_code, weights, lightness_of_y, allocate=np.empty):
    """L* (float32, H x W) of integer samples (H, W, 1 or 3) whose codes index the given tables.

    Colour: Y = weights . linear light, clipped to [0, 1], then L* from `lightness_of_y`, the curve at
    evenly spaced nodes of Y from 0 to 1. The code tables must cover every code of the samples' type
    (the loops do not check their indices). `allocate(shape, dtype)` gives the output array.
    """
    top = np.iinfo(samples.dtype).max
    if len(linear_of_code) <= top or len(lightness_of_code) <= top:
        raise ValueError(f"tables of {len(lightness_of_code)} codes cannot cover {samples.dtype} samples")
    # Read-only or not, decoders hand over either; numba compiles a variant per kind, so one kind it is.
    samples = samples.view()
    samples.flags.writeable = False
    out = allocate(samples.shape[:2], np.float32)
    turned = abs(samples.strides[0]) < abs(samples.strides[1])  # a row steps less than a column
    tiles = (TILE_ROWS, TILE_COLUMNS) if turned else (1, max(1, out.shape[1]))
    if samples.shape[2] == 1:
        _gray(samples, lightness_of_code, *tiles, out)
    else:
        _colour(samples, linear_of_code, np.asarray(weights, np.float32), lightness_of_y, *tiles, out)
    return out


@dataclass(frozen=True)
class Lightness:
    """A photo's L*: float32 values (H, W), or a gray photo's integer codes (H, W, rows in memory order)
    with the L* of every code. Codes keep L at 1 or 2 bytes a pixel for the kernels that look it up as
    they go (colour.shrink_kernel, colour.render_kernel): no float copy of the photo is ever built."""

    samples: np.ndarray
    lightness_of_code: np.ndarray | None = None

    @property
    def shape(self):
        return self.samples.shape

    def values(self, allocate=np.empty):
        """float32 L* (H, W): the samples themselves, or their codes looked up into `allocate(shape, dtype)`."""
        if self.lightness_of_code is None:
            return self.samples
        out = allocate(self.shape, np.float32)
        _gray(self.samples[..., None], self.lightness_of_code, 1, max(1, self.shape[1]), out)
        return out
