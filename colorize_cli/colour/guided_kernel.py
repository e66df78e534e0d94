"""The guided filter's fit (upsample.guided_coefficients) compiled for the CPU: O(1) per pixel, float64.

The torch form takes ~45 calls over six planes of the working size (running sums, differences, the
slope and offset arithmetic), about 11 ms per image on one thread here, a fixed cost that weighs most on
small photos. This kernel does the same float64 sums in the same order, in two sweeps per plane in
memory order: about 3 ms.
How it compiles and caches: colour/jit.py.
"""

import numpy as np

from colorize_cli.colour.jit import compiled


@compiled
def _box_mean(planes, radius, out):
    """Mean of each plane (C, h, w) over the (2r+1)^2 window clipped to the plane, into out (C, h, w)."""
    channels, height, width = planes.shape
    across = np.empty((height, width), np.float64)
    per_column = np.empty(width, np.float64)  # 1 / the window's columns inside the plane
    for x in range(width):
        per_column[x] = 1.0 / (min(x + radius, width - 1) - max(x - radius, 0) + 1)
    for channel in range(channels):
        for y in range(height):  # sums along each row
            total = 0.0
            for x in range(min(radius, width)):
                total += planes[channel, y, x]
            for x in range(width):
                if x + radius < width:
                    total += planes[channel, y, x + radius]
                if x - radius - 1 >= 0:
                    total -= planes[channel, y, x - radius - 1]
                across[y, x] = total
        # then along each column, a row at a time (in memory order), divided by the window's pixels inside
        columns = np.zeros(width, np.float64)
        for y in range(min(radius, height)):
            columns += across[y]
        for y in range(height):
            if y + radius < height:
                columns += across[y + radius]
            if y - radius - 1 >= 0:
                columns -= across[y - radius - 1]
            inside_y = min(y + radius, height - 1) - max(y - radius, 0) + 1
            for x in range(width):
                out[channel, y, x] = columns[x] * (per_column[x] / inside_y)


@compiled
def fit(guide, ab, radius, eps, slope, offset):
    """Smoothed slope and offset (each 2, h, w) of ab (2, h, w) ~ slope * guide + offset, guide (h, w)."""
    height, width = guide.shape
    planes = np.empty((6, height, width), np.float64)
    for y in range(height):
        for x in range(width):
            g = np.float64(guide[y, x])
            a, b = np.float64(ab[0, y, x]), np.float64(ab[1, y, x])
            planes[0, y, x], planes[1, y, x], planes[2, y, x] = g, a, b
            planes[3, y, x], planes[4, y, x], planes[5, y, x] = g * a, g * b, g * g
    means = np.empty_like(planes)
    _box_mean(planes, radius, means)
    coefficients = np.empty((4, height, width), np.float64)
    for y in range(height):
        for x in range(width):
            mean_guide = means[0, y, x]
            variance = means[5, y, x] - mean_guide * mean_guide + eps
            for channel in range(2):
                mean_ab = means[1 + channel, y, x]
                channel_slope = (means[3 + channel, y, x] - mean_guide * mean_ab) / variance
                coefficients[channel, y, x] = channel_slope
                coefficients[2 + channel, y, x] = mean_ab - channel_slope * mean_guide
    smooth = np.empty_like(coefficients)
    _box_mean(coefficients, radius, smooth)
    for channel in range(2):
        for y in range(height):
            for x in range(width):
                slope[channel, y, x] = smooth[channel, y, x]
                offset[channel, y, x] = smooth[2 + channel, y, x]
