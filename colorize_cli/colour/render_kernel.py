"""The fused full-resolution pass compiled with numba: row by row, with no full-size temporaries.

It computes what render.StripRenderer computes in ~60 eager torch calls per strip, each a full pass over
memory: bilinear taps of the folded planes, f^-1, the 3x3 matrix and the sRGB table. Each row goes
through short loops over row-sized buffers that stay in the cache: the colour maths and the clipping
have no table look-ups, so LLVM turns them into SIMD; the look-ups follow in a loop of their own.
Single-threaded on purpose: the batch gives each worker thread its own image, and `nogil` lets those
threads run side by side.

How it compiles and caches: colour/jit.py.
"""

import numpy as np
from numba import types
from numba.extending import overload

from colorize_cli.colour.jit import JIT_OPTIONS as _JIT_OPTIONS
from colorize_cli.colour.jit import compiled as _compiled


@_compiled
def _lerp(a, b, weight):
    return a + weight * (b - a)


@_compiled
def _widen(planes, row, columns, into):
    """Row `row` of the planes (4, h, w) interpolated to full width along the column taps: into (4, W)."""
    left, right, weight = columns
    for plane in range(4):
        for x in range(into.shape[1]):
            into[plane, x] = _lerp(planes[plane, row, left[x]], planes[plane, row, right[x]], weight[x])


@_compiled
def _f_inv(f, knee, slope):
    # both branches of CIE's inverse as lab.lab_to_rgb has them, then a select: SIMD-friendly
    cube = f * f * f
    segment = (f - np.float32(16 / 116)) / slope
    return cube if f > knee else segment


@_compiled
def _linear_rgb_row(L, lower, upper, weight, rgb_from_xyz, f_knee, f_slope, linear):
    """Linear-light RGB (3, W), unclipped, of one row of L under the planes interpolated between two rows."""
    m = rgb_from_xyz
    zero = np.float32(0)
    for x in range(L.shape[0]):
        P = _lerp(lower[0, x], upper[0, x], weight)
        Q = _lerp(lower[1, x], upper[1, x], weight)
        R = _lerp(lower[2, x], upper[2, x], weight)
        S = _lerp(lower[3, x], upper[3, x], weight)
        fz = L[x] * R + S
        X = _f_inv(L[x] * P + Q, f_knee, f_slope)
        Y = _f_inv(L[x] * np.float32(1 / 116) + np.float32(16 / 116), f_knee, f_slope)
        Z = _f_inv(fz if fz > zero else zero, f_knee, f_slope)  # as skimage: fz < 0 (a negative Z) becomes 0
        for channel in range(3):
            linear[channel, x] = m[channel, 0] * X + m[channel, 1] * Y + m[channel, 2] * Z


def lightness_row(source_row, lightness_of_code, into):
    """L of one row: the row itself when it holds L, else its codes' L, written into `into`."""


@overload(lightness_row, jit_options=_JIT_OPTIONS)
def lightness_row_for(source_row, lightness_of_code, into):
    if isinstance(lightness_of_code, types.NoneType):
        return lambda source_row, lightness_of_code, into: source_row

    def looked_up(source_row, lightness_of_code, into):
        for x in range(source_row.shape[0]):
            into[x] = lightness_of_code[source_row[x]]
        return into

    return looked_up


def _encode_row(linear, srgb, out_row):
    """Fill out_row (W, 3) with the sRGB of linear (3, W), which it overwrites; out_row's type picks how."""


@overload(_encode_row, jit_options=_JIT_OPTIONS)
def _encode_row_for(linear, srgb, out_row):
    if out_row.dtype == types.uint8:
        return _codes_by_step
    scale, offset = (65535.0, 0.5) if out_row.dtype == types.uint16 else (1.0, 0.0)

    def interpolated(linear, srgb, out_row):
        # srgb: the curve at steps + 1 evenly spaced nodes; storing truncates, so offset 0.5 rounds to codes
        steps = srgb.size - 1
        _clip_to_positions(linear, steps, steps)
        for x in range(out_row.shape[0]):
            for channel in range(3):
                position = linear[channel, x]
                node = min(np.uint32(position), steps - 1)
                srgb_value = _lerp(srgb[node], srgb[node + 1], position - np.float32(node))
                out_row[x, channel] = srgb_value * scale + offset

    return interpolated


def _codes_by_step(linear, srgb, out_row):
    # srgb: the 8-bit code of each of its steps of linear light, indexed by trunc(linear * steps)
    _clip_to_positions(linear, srgb.size, srgb.size - 1)
    for x in range(out_row.shape[0]):
        for channel in range(3):
            out_row[x, channel] = srgb[np.uint32(linear[channel, x])]


@_compiled
def _clip_to_positions(linear, steps, last):
    """linear <- linear * steps clipped to [0, last], in place: a loop of its own, so that it runs in SIMD.

    Comparisons rather than min/max: NaN fails both and becomes 0, so even a NaN stays inside the tables.
    """
    steps, last, zero = np.float32(steps), np.float32(last), np.float32(0)
    for channel in range(3):
        for x in range(linear.shape[1]):
            position = linear[channel, x] * steps
            position = position if position > zero else zero
            linear[channel, x] = position if position < last else last


@_compiled
def render_pixels(source, lightness_of_code, planes, rows, columns, rgb_from_xyz, f_knee, f_slope, srgb, out):
    """Fill out (H, W, 3) with the sRGB of every pixel of source (H, W) under the folded planes (4, h, w).

    source: L (float32) when lightness_of_code is None, else integer codes whose L is lightness_of_code[code].
    rows, columns: bilinear taps (below, above, weight) from each full-resolution row and column into the
    planes. rgb_from_xyz: the 3x3 matrix with the white point folded in. srgb: for 8-bit output the code
    of each step of linear light, else the curve at evenly spaced nodes (see _encode_row).
    All floats are float32, as in the torch path.
    """
    height, width = source.shape
    f_knee, f_slope = np.float32(f_knee), np.float32(f_slope)
    lower, upper = np.empty((4, width), np.float32), np.empty((4, width), np.float32)
    lightness = np.empty(width, np.float32)
    linear = np.empty((3, width), np.float32)
    row_below, row_above, row_weight = rows
    widened = (-1, -1)  # the plane rows now in lower and upper
    for y in range(height):
        # ~10 full rows share each pair of plane rows: widen a plane row only when the pair moves on
        pair = (row_below[y], row_above[y])
        if pair != widened:
            if pair[0] == widened[1]:
                lower, upper = upper, lower
            else:
                _widen(planes, pair[0], columns, lower)
            _widen(planes, pair[1], columns, upper)
            widened = pair
        L = lightness_row(source[y], lightness_of_code, lightness)
        _linear_rgb_row(L, lower, upper, row_weight[y], rgb_from_xyz, f_knee, f_slope, linear)
        _encode_row(linear, srgb, out[y])
