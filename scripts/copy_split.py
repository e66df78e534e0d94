"""Copy the original photos of a prepared dataset's split to a plain folder, chosen by its manifest.

    python scripts/copy_split.py data/photos-train data/photos-train-val --split val
    python scripts/copy_split.py data/photos-train data/no-caltech --split train --exclude caltech101
    python scripts/copy_split.py data/photos-train data/sample --split train --count 6645 --seed 0

The held-out folder that `choose_step.py` and `aged_probe.py` score, and the training folders of a
learning curve or a leave-one-source-out run, are the photos of one split as prep-dataset chose it, so the
figures of a model trained on the prepared folder and of one trained on the copy refer to the same photos.
Each photo keeps its path under its source folder (`caltech101/00012.jpg`), so `--balance-folders` and
`--exclude` see the same folders. The originals are read from the source folders that stats.json names
(relative to where prep-dataset ran; archive and URL sources are not supported) and never written;
the output folder must be new or empty.
"""

import argparse
import random
import shutil
import sys
from pathlib import Path, PurePosixPath

from colorize_cli.train.datasets import prepared_rows, read_stats, top_folder


def source_folders(prepared):
    """Each source folder of a prep-dataset run by the name its manifest rows start with."""
    return {Path(source).name: Path(source) for source in read_stats(prepared)["sources"]}


def _inside_source(row):
    """A row's path inside its source folder ("caltech101/x.jpg" of "photos-train/caltech101/x.jpg")."""
    return PurePosixPath(*PurePosixPath(row["source"]).parts[1:])


def choose(rows, exclude=(), count=None, seed=0):
    """The rows outside the excluded folders, then `count` of them drawn at random (all when None)."""
    exclude = set(exclude)
    kept = [row for row in rows if top_folder(_inside_source(row)) not in exclude]
    if count is None:
        return kept
    if count > len(kept):
        raise ValueError(f"asked for {count} photos but the split holds {len(kept)} after exclusions")
    drawn = sorted(random.Random(seed).sample(range(len(kept)), count))
    return [kept[index] for index in drawn]


def copy_rows(rows, sources, out):
    """Copy each row's original file under `out`, keeping its path inside its source folder."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: copy into a new folder, so no stale photo mixes in")
    for row in rows:
        name, inside = PurePosixPath(row["source"]).parts[0], _inside_source(row)
        if name not in sources:
            raise FileNotFoundError(f"{row['source']}: its source {name!r} is not a folder of this dataset")
        target = out / inside
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[name] / inside, target)
    return len(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prepared", help="a prep-dataset output folder (manifest.jsonl, stats.json)")
    parser.add_argument("out", help="a new or empty folder")
    parser.add_argument("--split", choices=("train", "val"), required=True)
    parser.add_argument("--exclude", default="", help="comma-separated source subfolders to leave out")
    parser.add_argument("--count", type=int, help="draw this many photos at random (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    exclude = [name for name in args.exclude.split(",") if name]
    try:
        rows = choose(prepared_rows(args.prepared, args.split), exclude, args.count, args.seed)
        copied = copy_rows(rows, source_folders(args.prepared), args.out)
    except (OSError, ValueError, KeyError) as err:
        sys.exit(f"copy_split: {err}")
    print(f"copied {copied} photos of the {args.split} split to {args.out}")


if __name__ == "__main__":
    main()
