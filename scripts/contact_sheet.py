"""A side-by-side sheet of photos and their colorized versions, for looking at real inputs with no truth.

    python scripts/contact_sheet.py ../shared/datasets/historical-dev sheet.png old=out_old new=out_new

Each NAME=FOLDER is a `colorize` output folder mirroring PHOTOS (any image suffix); every photo becomes
a row: the input, then each folder's version, all shown at 256 px on the short side.
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from colorize_cli.evaluate.plots import image_grid
from colorize_cli.photos.discovery import walk_images

SHOWN_SIZE = 256


def _shown(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        image = image.convert("RGB")
        scale = SHOWN_SIZE / min(image.size)
        return np.asarray(image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale)))))


def _version(folder: Path, relative: Path) -> Path | None:
    matches = sorted(folder.glob(f"{relative.with_suffix('').as_posix()}.*"))
    return next((m for m in matches if not m.name.endswith((".json", ".diagnostics.png"))), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("versions", nargs="+", help="NAME=FOLDER")
    parser.add_argument("--limit", type=int, default=12, help="rows (photos, in sorted order)")
    args = parser.parse_args()
    versions = [(name, Path(folder)) for name, _, folder in (v.partition("=") for v in args.versions)]
    rows, labels = [], []
    for photo in walk_images(args.photos)[: args.limit]:
        relative = photo.relative_to(args.photos)
        outputs = [_version(folder, relative) for _, folder in versions]
        rows.append([_shown(photo), *(_shown(p) if p else None for p in outputs)])
        labels.append(relative.as_posix()[:28])
    image_grid(args.out, rows, row_labels=labels, col_labels=["input", *(name for name, _ in versions)])


if __name__ == "__main__":
    main()
