"""colorize: bring colour back to black-and-white photographs.

The library behind the `colorize` command; every subcommand is a call to one of these:

    from colorize_cli import Colorizer, read_luminance, write_image
    colorizer = Colorizer.from_checkpoint("gan", device="cpu")
    L, photo = read_luminance("scan.tif")
    write_image("scan_colour.tif", colorizer.colorize_l(L, bit_depth=photo.bit_depth))

For many photos, `read_lightness` and `colorizer.colorize_lightness` do the same without building a
float copy of a gray photo (what the batch job runs).
"""

import os

__version__ = "0.1.0"

# Before numpy loads (the CLI imports this package first): no transparent huge pages for numpy's large
# arrays. With the kernel's usual THP "madvise" setting each fresh 12-96 MB photo buffer may stall in
# page compaction: on the 2-core bench machine 24 MP batches took 2.0-2.1x the I/O floor without them and
# 2.5x with them, 12 MP 2.0-2.2x against 1.8-3.3x from run to run. NUMPY_MADVISE_HUGEPAGE=1 restores them.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

# Imported lazily so that `import colorize_cli` (and `colorize --version`) stays cheap.
_EXPORTS = {
    "Colorizer": "colorize_cli.colorize.colorizer",
    "read_image": "colorize_cli.photos.io",
    "read_luminance": "colorize_cli.photos.io",
    "read_lightness": "colorize_cli.photos.io",
    "write_image": "colorize_cli.photos.io",
    "rgb_to_lab": "colorize_cli.colour.lab",
    "lab_to_rgb": "colorize_cli.colour.lab",
    "build_model": "colorize_cli.models",
    "MODEL_NAMES": "colorize_cli.models",
    "save_checkpoint": "colorize_cli.models.checkpoint",
    "load_checkpoint": "colorize_cli.models.checkpoint",
    "plan_jobs": "colorize_cli.photos.discovery",
    "run_batch": "colorize_cli.colorize.batch",
    "evaluate_folder": "colorize_cli.evaluate.report",
    "prep_dataset": "colorize_cli.prep.pipeline",
    # Not "train": that name is the subpackage colorize_cli.train, which Python binds over any such export.
    "train_model": "colorize_cli.train.loop:train",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'colorize_cli' has no attribute {name!r}")
    import importlib

    module, _, attribute = _EXPORTS[name].partition(":")
    return getattr(importlib.import_module(module), attribute or name)
