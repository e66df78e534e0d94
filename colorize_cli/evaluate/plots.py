"""PNG figures for reports: line plots (error curves, losses) and image grids (contact sheets)."""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from colorize_cli.photos.fsutil import atomic_write

# Inches per grid cell and dots per inch: a 256 px image keeps roughly its own resolution.
CELL_INCHES = 2.6
DPI = 100


def _save(figure, path):
    # Figure + the Agg canvas directly, not pyplot: no global state, no display needed.
    FigureCanvasAgg(figure)
    with atomic_write(path) as tmp_path:
        figure.savefig(tmp_path, format="png", dpi=DPI)


def line_plot(path, series, *, xlabel, ylabel, title):
    """Plot named (xs, ys) series on one set of axes and write a PNG to `path`."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    for name, (xs, ys) in series.items():
        axes.plot(xs, ys, label=name)
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axes.grid(alpha=0.3)
    if series:
        axes.legend()
    _save(figure, path)


def image_grid(path, rows, *, row_labels=None, col_labels=None):
    """Write a PNG grid of RGB images (float in [0,1] or uint8); `None` cells are left blank."""
    if not rows or not any(rows):
        raise ValueError("image_grid needs at least one image")
    num_cols = max(len(row) for row in rows)
    figure = Figure(figsize=(CELL_INCHES * num_cols, CELL_INCHES * len(rows)), layout="constrained")
    grid = figure.subplots(len(rows), num_cols, squeeze=False)
    for r, row in enumerate(rows):
        for c in range(num_cols):
            axes = grid[r][c]
            axes.set_xticks([])
            axes.set_yticks([])
            for spine in axes.spines.values():
                spine.set_visible(False)
            image = row[c] if c < len(row) else None
            if image is not None:
                axes.imshow(_as_uint8(image))
            if r == 0 and col_labels:
                axes.set_title(col_labels[c], fontsize=9)
            if c == 0 and row_labels:
                axes.set_ylabel(row_labels[r], fontsize=8)
    _save(figure, path)


def _as_uint8(image):
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)
