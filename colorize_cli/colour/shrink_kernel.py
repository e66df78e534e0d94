"""The network's input straight from the photo's codes: L* looked up and shrunk to the working size in one
compiled pass, so that the full-resolution float L is never built (compiled with numba).

The filter is F.interpolate's bilinear with antialias=True (Pillow's triangle filter, widened by the
scale), so the network sees what it sees through the torch path. Separable: each source row is looked
up once and added into the output rows it weighs in, at full width, and those rows are then shrunk
along their columns. At 3 MP this replaces a 12 MB float L (a look-up pass and a resize pass over it)
with one read of the codes.
How it compiles and caches: colour/jit.py.
"""

import numpy as np

from colorize_cli.colour.jit import compiled
from colorize_cli.colour.render_kernel import lightness_row


def triangle_taps(source_size, size):
    """(first tap, taps, weights) of each of `size` outputs from `source_size` inputs, as torch's
    antialiased bilinear downscale weighs them (align_corners=False); weights (size, most taps), float32.

    Only for shrinking or keeping a size: enlarging is another filter (plain bilinear).
    """
    if size > source_size:
        raise ValueError(f"the triangle taps shrink: {source_size} -> {size} would enlarge")
    scale = source_size / size
    centres = scale * (np.arange(size) + 0.5)
    first = np.maximum((centres - scale + 0.5).astype(np.int64), 0)
    stop = np.minimum((centres + scale + 0.5).astype(np.int64), source_size)
    count = stop - first
    offsets = np.arange(count.max())
    weights = np.maximum(0.0, 1.0 - np.abs((first[:, None] + offsets - centres[:, None] + 0.5) / scale))
    weights[offsets >= count[:, None]] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    return first, count, weights.astype(np.float32)


@compiled
def _shrink(source, lightness_of_code, rows, columns, out):
    height, width = source.shape
    first_row, row_taps, row_weights = rows
    first_column, column_taps, column_weights = columns
    # Rows first: each source row, looked up once, is added into the (about two) output rows whose
    # window holds it, in full-width loops that run in SIMD; the columns then shrink in a buffer of the
    # working height only.
    down = np.zeros((out.shape[0], width), np.float32)
    lightness = np.empty(width, np.float32)
    lowest = 0  # the first output row whose window has not been passed yet
    for y in range(height):
        while first_row[lowest] + row_taps[lowest] <= y:
            lowest += 1
        L = lightness_row(source[y], lightness_of_code, lightness)
        row = lowest
        while row < out.shape[0] and first_row[row] <= y:
            weight = row_weights[row, y - first_row[row]]
            for x in range(width):
                down[row, x] += weight * L[x]
            row += 1
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            start, total = first_column[x], np.float32(0)
            for tap in range(column_taps[x]):
                total += column_weights[x, tap] * down[y, start + tap]
            out[y, x] = total


def shrink_lightness(source, size, lightness_of_code=None):
    """L* (float32, size) of source (H, W) shrunk with torch's antialiased bilinear filter.

    source: float32 L*, or integer codes whose L* is lightness_of_code[code] (rows in memory order:
    a turned view reads across cache lines). size: (height, width), neither larger than the source's.
    """
    height, width = source.shape
    if lightness_of_code is not None and len(lightness_of_code) <= np.iinfo(source.dtype).max:
        raise ValueError(f"{len(lightness_of_code)} lightness values cannot cover {source.dtype} codes")
    out = np.empty(size, np.float32)
    _shrink(source, lightness_of_code, triangle_taps(height, size[0]), triangle_taps(width, size[1]), out)
    return out


def warm_up() -> None:
    """Compile (or load from numba's cache) the shrink of float L and of read-only 8- and 16-bit codes now."""
    for dtype in (np.uint8, np.uint16):
        codes = np.zeros((2, 2), dtype)
        codes.flags.writeable = False  # as photos.io.read_lightness hands them over
        shrink_lightness(codes, (1, 1), np.zeros(np.iinfo(dtype).max + 1, np.float32))
    shrink_lightness(np.zeros((2, 2), np.float32), (1, 1))
