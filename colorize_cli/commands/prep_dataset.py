"""`colorize prep-dataset`: build a compact, checked training set from folders, archives and photo lists."""

import os
import sys
from pathlib import Path

import click

from colorize_cli.commands.common import FatalError, user_errors
from colorize_cli.prep.download import DownloadOptions
from colorize_cli.prep.photo import CROPS, PhotoOptions
from colorize_cli.prep.pipeline import PrepError, PrepOptions, prep_dataset
from colorize_cli.prep.sources import SourceError
from colorize_cli.progress import one_line

MB = 1 << 20


@click.command(
    "prep-dataset",
    epilog="""\b
Examples:
  colorize prep-dataset ~/photos -o data/mine
  colorize prep-dataset train_256_places365standard.tar \\
      --labels places365_train_standard.txt -o data/places --workers 8
  colorize prep-dataset places365_train_standard.txt --images-root data_256 -o data/places
  colorize prep-dataset unsplash-lite/photos.tsv000 -o data/unsplash --limit 5000
  colorize train --model gan --data data/places

\b
Output (DIR):
  shards/*.bin      photos as raw 8-bit RGB, read by `train` through memory maps
  manifest.jsonl    one line per photo: source, hash, size, label, split, shard
  stats.json        counts per split and per skip reason, failed files, the 313-bin ab prior
  downloads/        photos fetched for Unsplash TSV sources

\b
Exit codes: 0 every candidate read (filters may have dropped some), 1 the set was
written but some file failed (unreadable, corrupt, truncated, missing or not
downloaded: each named on stderr, the first 50 also in stats.json), 2 usage error
or no usable photo.""",
)
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder, not inside a source folder; nothing is written outside it. Rerunning resumes.")
@click.option("--size", default=256, show_default=True, type=click.IntRange(16),
              help="Short side of the stored photos in px (larger photos are shrunk, smaller kept).")
@click.option("--min-size", default=128, show_default=True, type=click.IntRange(1),
              help="Drop photos whose short side is below this (before resizing).")
@click.option("--crop", type=click.Choice(CROPS), default="none", show_default=True,
              help="Store a square crop of each resized photo: centre, or at a position fixed by its content.")
@click.option("--max-aspect", default=3.0, show_default=True, type=click.FloatRange(1.0),
              help="Drop panoramas and strips: long side / short side above this.")
@click.option("--min-chroma", default=1.0, show_default=True, type=click.FloatRange(0.0),
              help="Drop grey, sepia and other one-tint photos: colour spread (Lab units) below this; 0 keeps all.")
@click.option("--dedupe-distance", default=6, show_default=True, type=click.IntRange(-1, 32),
              help="Drop near-duplicates: 128-bit perceptual hashes this many bits apart or closer; -1 keeps them.")
@click.option("--val-fraction", default=0.05, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="Share of photos in the validation split, chosen by a hash of each file's content.")
@click.option("--labels", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Places-style list (`path index` per line) giving archive members and files scene labels.")
@click.option("--images-root", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder the paths of a .txt list source are relative to (default: the list's folder).")
@click.option("--workers", default=os.cpu_count() or 1, show_default="all cores", type=click.IntRange(1),
              help="Processes decoding photos in parallel.")
@click.option("--limit", type=click.IntRange(1), help="Read at most this many candidate photos (downloads included).")
@click.option("--shard-images", default=1000, show_default=True, type=click.IntRange(1),
              help="Candidates per shard; a rerun skips finished shards.")
@click.option("--max-file-mb", default=64, show_default=True, type=click.IntRange(1),
              help="Skip files and archive members larger than this (zip bombs included).")
@click.option("--max-pixels", default=PhotoOptions().max_pixels, show_default=True, type=click.IntRange(1),
              help="Skip images with more pixels than this (decompression bombs); Pillow's limit by default.")
@click.option("--download-workers", default=8, show_default=True, type=click.IntRange(1, 64),
              help="Parallel requests for Unsplash TSV sources.")
@click.option("--retries", default=3, show_default=True, type=click.IntRange(0),
              help="Retries per download after a network error or a 5xx/429 answer, with exponential back-off.")
@click.option("--max-download-mb", default=32, show_default=True, type=click.IntRange(1),
              help="Abandon downloads larger than this.")
@click.option("--quiet", is_flag=True, help="No progress bar (it is off anyway when stderr is not a terminal).")
@user_errors(SourceError, PrepError)
def prep_dataset_command(sources, out, size, min_size, crop, max_aspect, min_chroma, dedupe_distance,
                         val_fraction, labels, images_root, workers, limit, shard_images, max_file_mb,
                         max_pixels, download_workers, retries, max_download_mb, quiet):
    """Turn photo collections into a training set that `colorize train --data DIR` reads fast.

    SOURCE is a folder (read recursively), a .tar/.tar.gz/.zip archive (read as a stream, never
    unpacked), a Places-style .txt file list (`path index`: the index becomes the scene label), or an
    Unsplash photos.tsv file (its photo_image_url column is downloaded into DIR/downloads).

    Every photo is decoded, turned upright (EXIF), converted to sRGB (ICC profiles honoured) and shrunk
    so that its short side is --size. Too small, grey or sepia, near-duplicate and extreme aspect photos
    are dropped and counted; so are unsafe archive members (links, device files, absolute or `..` paths,
    bombs). Files that cannot be read (corrupt, truncated, missing, not downloaded) are also named with
    their cause, one line each. The train/val split follows a hash of each file's content, so adding
    photos never moves old ones.
    """
    options = PrepOptions(
        photo=PhotoOptions(size=size, min_size=min_size, crop=crop, max_aspect=max_aspect,
                           min_chroma=min_chroma, max_pixels=max_pixels),
        val_fraction=val_fraction,
        dedupe_distance=dedupe_distance,
        workers=workers,
        limit=limit,
        shard_images=shard_images,
        max_file_bytes=max_file_mb * MB,
        labels=labels,
        images_root=images_root,
        download=DownloadOptions(workers=download_workers, retries=retries, max_bytes=max_download_mb * MB),
        progress=not quiet,
    )
    try:
        report = prep_dataset(list(sources), out, options)
    except OSError as err:  # reading errors are counted per photo: this is the output's disk, full or read-only
        raise click.ClickException(f"{out}: cannot write the training set ({err.strerror or err}); "
                                   "finished shards are kept, rerun to resume") from None
    failures = report.failures
    for line in failures.named:
        click.echo(one_line(f"error: {line}"), err=True)  # a file name may hold a newline
    if failures.count > len(failures.named):
        click.echo(f"error: {failures.count - len(failures.named)} more files failed; they are in the skip counts",
                   err=True)
    kept = report.images["train"] + report.images["val"]
    click.echo(f"{out}: {kept} photos kept (train {report.images['train']}, val {report.images['val']}) "
               f"of {report.candidates} candidates in {report.seconds:.1f} s "
               f"({report.candidates / max(report.seconds, 1e-9):.0f} candidates/s)")
    click.echo(f"shards: {report.shards_written} written, {report.shards_reused} already finished")
    for outcome, count in sorted(report.downloads.items()):
        click.echo(f"downloads {outcome}: {count}")
    for reason, count in sorted(report.skipped.items(), key=lambda pair: -pair[1]):
        click.echo(f"skipped {reason}: {count}")
    if kept == 0:
        raise FatalError(f"no usable photos in {', '.join(map(str, sources))}; see the skip counts above")
    sys.exit(1 if failures.count else 0)
