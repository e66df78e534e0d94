"""Which files a batch colorizes and where each result goes: input discovery, tree mirroring, shards."""

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".pbm", ".jp2"}
)
OUTPUT_SUFFIXES = {"jpg": ".jpg", "png": ".png", "tif": ".tif"}
# Formats we write as they are; anything else (GIF, BMP, WebP...) becomes PNG under --format same.
KEPT_SUFFIXES = {".jpg": ".jpg", ".jpeg": ".jpeg", ".jpe": ".jpg", ".png": ".png", ".tif": ".tif", ".tiff": ".tiff"}


class InputError(ValueError):
    """The inputs or output folder given on the command line cannot be used as asked."""


@dataclass(frozen=True)
class Job:
    """One image to colorize: where it is, its path relative to its input root, where it goes; `error` says
    why it cannot even be tried (a folder that could not be listed)."""

    source: Path
    relative: Path
    output: Path
    error: str | None = None


def is_image_name(path):
    """True when the file name has an image suffix (other files in a tree are skipped quietly)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def walk_images(folder, unlisted=None):
    """Image files under `folder`, recursively, sorted; symlinked folders are not followed (no loops).

    The OSError of each folder that cannot be listed (permission denied...) is appended to `unlisted`.
    """
    found = []
    on_error = unlisted.append if unlisted is not None else None
    for root, dirs, files in os.walk(folder, onerror=on_error, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / name for name in sorted(files) if is_image_name(name) and not name.startswith("."))
    return found


def read_path_list(stream):
    """Paths from a --files-from stream: one per line, blank lines skipped; a line's spaces are kept (file names
    may begin or end with one), only its line ending is dropped."""
    return [Path(line.rstrip("\r\n")) for line in stream if line.strip()]


def default_output_dir(inputs):
    """`<input>_colorized` beside the (first) input folder; for a file, beside its folder."""
    first = Path(inputs[0]).resolve()
    base = first if first.is_dir() else first.parent
    if not base.name:  # the root folder has nothing beside it
        raise InputError(f"{base} has no folder beside it for the results; choose one with -o")
    return base.with_name(base.name + "_colorized")


NO_SIDECARS = lambda output: ()  # noqa: E731 (an output with nothing written beside it)


def plan_jobs(inputs, out_dir, output_format="same", sidecars=NO_SIDECARS):
    """Jobs mirroring each input's tree under out_dir (several inputs each get a subfolder).

    `sidecars(output)` names the other files written beside an output (diagnostics): no two jobs may share
    any of them either. Listed files that are this plan's own results (a `find` list run again names the
    last run's results too) are skipped, with a warning.
    """
    out_dir = Path(out_dir)
    out_resolved = _real_path(out_dir)
    inputs, inside = list(map(Path, inputs)), {}  # inside: listed file -> its real path, for files under -o
    for item in inputs:
        if not item.is_dir() and out_resolved in (real := _real_path(item)).parents:
            inside[item] = real
    inputs = [item for item in inputs if item not in inside]
    jobs = _mirrored(inputs, out_dir, output_format, sidecars)
    results = {_real_path(written) for job in jobs for written in (job.output, *sidecars(job.output))}
    own = [item for item, real in inside.items() if real in results]
    if len(own) < len(inside):  # files of the user's own under -o: inputs like any other
        inputs += [item for item, real in inside.items() if real not in results]
        jobs = _mirrored(inputs, out_dir, output_format, sidecars)
    if own:
        warnings.warn(f"skipping {len(own)} listed file(s) in {out_dir}: results of an earlier run", stacklevel=2)
    check_output_dir(out_dir, inputs, jobs, sidecars)
    return jobs


def _mirrored(inputs, out_dir, output_format, sidecars):
    roots, missing = _input_roots(inputs)
    several = len(roots) > 1
    # A path that vanished between `find` and now is one bad file, as in cp and rsync: reported, not fatal.
    jobs = [Job(source=item, relative=Path(item.name), output=out_dir / item.name, error="no such file or folder")
            for item in missing]
    seen = {}
    for root, files, unlisted, is_folder in roots:
        prefix = Path(root.name) if several and is_folder else Path()
        for source in files:
            relative = prefix / (source.relative_to(root) if is_folder else source.absolute().relative_to(root))
            output = out_dir / relative.with_suffix(output_suffix(source, output_format))
            for written in (output, *sidecars(output)):
                if written in seen:
                    raise InputError(f"{source} and {seen[written]} would both be written to {written}")
                seen[written] = source
            jobs.append(Job(source=source, relative=relative, output=output))
        for err in unlisted:  # reported as failed jobs: the rest of the tree is still done
            folder = Path(err.filename)
            relative = prefix / folder.relative_to(root)
            error = f"cannot list this folder ({err.strerror or err})"
            jobs.append(Job(source=folder, relative=relative, output=out_dir / relative, error=error))
    return jobs


def _input_roots(inputs):
    """Group inputs into (root, files, unlisted folders' errors, is_folder): a folder is its own root; loose
    files share their common folder. Also returns the inputs that do not exist."""
    roots, loose, missing = [], [], []
    for item in map(Path, inputs):
        if item.is_dir():
            unlisted = []
            roots.append((item, walk_images(item, unlisted), unlisted, True))
        elif item.exists() or item.is_symlink():
            loose.append(item)
        else:
            missing.append(item)
    if loose:
        common = Path(os.path.commonpath([str(p.absolute().parent) for p in loose]))
        roots.append((common, loose, [], False))  # each named as given, like a folder's files and a missing path
    return roots, missing


def output_suffix(source, output_format):
    """The output file suffix for `source` under --format."""
    if output_format == "same":
        return KEPT_SUFFIXES.get(source.suffix.lower(), ".png")
    return OUTPUT_SUFFIXES[output_format]


def check_output_dir(out_dir, inputs, jobs, sidecars=NO_SIDECARS):
    """Refuse an output folder inside an input folder, any output (or sidecar) that is an input file, and any
    written into the folder of a listed input file: results mixed in among originals pass for them."""
    out_resolved = _real_path(out_dir)
    for item in map(Path, inputs):
        resolved = _real_path(item)
        if item.is_dir() and (out_resolved == resolved or resolved in out_resolved.parents):
            raise InputError(f"output folder {out_dir} is inside input folder {item}; choose another -o")
    sources = {_real_path(job.source) for job in jobs}
    loose_folders = {_real_path(item).parent: item for item in map(Path, inputs) if item.is_file()}
    for job in jobs:
        for written in (job.output, *sidecars(job.output)):
            real = _real_path(written)
            if real in sources:
                raise InputError(f"{written} is an input file; refusing to overwrite it")
            if real.parent in loose_folders:
                raise InputError(f"{written} would be written beside input file {loose_folders[real.parent]}; "
                                 "choose another -o")


def _real_path(path):
    """The absolute path with links resolved; unlike Path.resolve, a symlink loop is not an error."""
    return Path(os.path.realpath(path))


def parse_shard(text):
    """'K/N' (1-based) -> (K, N)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: expected K/N, e.g. 2/8") from None
    if not 1 <= index <= count:
        raise InputError(f"--shard {text!r}: K must be between 1 and N")
    return index, count


def in_shard(job, index, count):
    """Whether `job` belongs to shard index/count; decided by its relative path alone, so every
    machine agrees without a coordinator and adding files never moves others."""
    digest = hashlib.sha256(job.relative.as_posix().encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count == index - 1
