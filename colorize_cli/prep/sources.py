"""Where prep-dataset's images come from: folders, tar and zip archives, Places file lists, Unsplash TSVs.

Every source yields `SourceItem`s in a fixed order. Archives are read as streams, never extracted. Members
that must not be read (links, device files, absolute or `..` paths, oversize or non-image members, bad
list rows) are skipped and counted by reason, and those that could not be read are named too (see
failures.py); a source that cannot be read at all raises `SourceError`.
"""

import hashlib
import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from tqdm import tqdm

from colorize_cli.photos.discovery import is_image_name
from colorize_cli.prep.download import DownloadOptions, download_files
from colorize_cli.prep.failures import Failures, failure_line, is_failure

URL_COLUMN = "photo_image_url"
ID_COLUMN = "photo_id"
SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


class SourceError(ValueError):
    """A source that cannot be read at all; the message is one line naming it and the cause."""

    def __init__(self, source, cause):
        super().__init__(f"{source}: {cause}")


@dataclass(frozen=True)
class SourceItem:
    """One candidate image: a name for the manifest, a label (-1: none), and its bytes or where they are."""

    name: str
    label: int = -1
    path: str | None = None
    data: bytes | None = None

    def read(self):
        """The file's bytes (read here for folder files, so that worker processes do the I/O)."""
        return self.data if self.data is not None else Path(self.path).read_bytes()


@dataclass
class LabelList:
    """A Places-style list: `relative/path.jpg INDEX` per line; the category is the path's folder."""

    entries: list = field(default_factory=list)
    names: dict = field(default_factory=dict)
    bad_rows: int = 0
    _by_path: dict | None = None

    def lookup(self, member):
        """Label of an archive member or file, matched on the longest path suffix the list names; -1 if none."""
        if self._by_path is None:
            self._by_path = dict(self.entries)
        parts = PurePosixPath(member).parts
        for start in range(len(parts)):
            label = self._by_path.get("/".join(parts[start:]))
            if label is not None:
                return label
        return -1


def read_label_list(path):
    """Parse a Places-style file list (leading slashes are Places' way of writing relative paths)."""
    labels = LabelList()
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                fields = line.split()
                if not fields:
                    continue
                # ASCII digits only: str.isdigit() also accepts '²', which int() refuses.
                if len(fields) != 2 or not (fields[1].isascii() and fields[1].isdigit()):
                    labels.bad_rows += 1
                    continue
                relative, index = fields[0].replace("\\", "/").lstrip("/"), int(fields[1])
                labels.entries.append((relative, index))
                labels.names.setdefault(index, str(PurePosixPath(relative).parent))
    except OSError as err:
        raise SourceError(path, f"cannot read the file list ({err.strerror or err})") from None
    if not labels.entries:
        raise SourceError(path, "no `path index` lines: is it a Places-style file list?")
    return labels


@dataclass
class SourceOptions:
    """Limits and context shared by every source."""

    max_file_bytes: int = 64 << 20
    labels: LabelList | None = None
    images_root: Path | None = None
    download_dir: Path | None = None
    download: DownloadOptions = DownloadOptions()
    request_width: int | None = None

    def label_of(self, member):
        """The --labels label of a member, or -1."""
        return -1 if self.labels is None else self.labels.lookup(member)


@dataclass
class SourceTally:
    """What the sources skipped (reason -> count) and could not read, what the downloader did, the labels met."""

    skipped: Counter = field(default_factory=Counter)
    failures: Failures = field(default_factory=Failures)
    downloads: Counter = field(default_factory=Counter)
    label_names: dict = field(default_factory=dict)

    def skip(self, name, reason, detail=""):
        """Count a skipped file or member; one that could not be read is named as well."""
        self.skipped[reason] += 1
        if is_failure(reason):
            self.failures.add(failure_line(name, reason, detail))

    def add_labels(self, labels):
        """Record a label list's category names (the first name given to an index wins)."""
        for index, name in labels.names.items():
            self.label_names.setdefault(index, name)


def source_kind(path):
    """'folder', 'tar', 'zip', 'places-list' or 'unsplash-tsv'; SourceError for anything else."""
    path = Path(path)
    name = path.name.lower()
    if path.is_dir():
        return "folder"
    if not path.is_file():
        raise SourceError(path, "no such file or folder")
    if name.endswith(TAR_SUFFIXES):
        return "tar"
    if name.endswith(".zip"):
        return "zip"
    if ".tsv" in name:
        return "unsplash-tsv"
    if name.endswith(".txt"):
        return "places-list"
    raise SourceError(path, "not a folder, .tar[.gz], .zip, Places .txt list or Unsplash photos.tsv file")


def iter_items(sources, options, tally, limit=None):
    """SourceItems from every source in order, at most `limit` of them; skips go to `tally`."""
    kinds = [(Path(source), source_kind(source)) for source in sources]  # fail before any work
    count = 0
    for path, kind in kinds:
        remaining = None if limit is None else limit - count
        if remaining == 0:
            return
        for item in _READERS[kind](path, options, tally, remaining):
            yield item
            count += 1
            if count == limit:
                return


def _unsafe_reason(name):
    """Why an archive member name must not be used, or None: absolute paths and `..` components."""
    name = name.replace("\\", "/")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "absolute_path"
    if ".." in name.split("/"):
        return "parent_path"
    return None


def _file_reason(path, options):
    """Why a file on disk is skipped (checked with lstat: a link is not followed), or None."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "missing_file"
    except OSError:
        return "unreadable"
    if stat.S_ISLNK(info.st_mode):
        return "link"
    if not stat.S_ISREG(info.st_mode):
        return "special_file"  # reading a FIFO or a device would hang or never end
    if not is_image_name(path):
        return "not_an_image"
    if info.st_size > options.max_file_bytes:
        return "too_large_file"
    return None


def _folder_items(root, options, tally, limit):
    top = root.resolve().name

    def name_of(path):  # "<folder name>/<path inside it>", as the manifest writes it
        return "/".join((top, *Path(path).relative_to(root).parts))

    def unlisted(err):
        tally.skip(name_of(err.filename or root), "unreadable_folder", err.strerror or str(err))

    for folder, dirs, files in os.walk(root, onerror=unlisted, followlinks=False):
        here = Path(folder)
        kept = []
        for name in sorted(dirs):
            if name.startswith("."):
                continue
            if (here / name).is_symlink():
                tally.skip(name_of(here / name), "link")
            else:
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = here / name
            reason = _file_reason(path, options)
            if reason:
                tally.skip(name_of(path), reason)
                continue
            yield SourceItem(name_of(path), options.label_of(path.relative_to(root).as_posix()), path=str(path))


def _escape_reason(folder, real_root, resolved):
    """'outside_root' when `folder` leads out of the images root through a symlinked folder, or None.

    `resolved` caches the answer per folder: a list names a few hundred folders, a million times.
    """
    if folder not in resolved:
        real = Path(os.path.realpath(folder))
        resolved[folder] = real == real_root or real_root in real.parents
    return None if resolved[folder] else "outside_root"


def _places_items(list_path, options, tally, limit):
    labels = read_label_list(list_path)
    if labels.bad_rows:
        tally.skipped["bad_row"] += labels.bad_rows
    root = Path(options.images_root) if options.images_root else list_path.parent
    real_root, resolved = Path(os.path.realpath(root)), {}
    for relative, label in labels.entries:
        name, path = f"{list_path.name}/{relative}", root / relative
        reason = (
            _unsafe_reason(relative) or _escape_reason(path.parent, real_root, resolved) or _file_reason(path, options)
        )
        if reason:
            tally.skip(name, reason)
            continue
        # Only rows that are read name a label: a refused row's folder ('../outside') is no category.
        tally.label_names.setdefault(label, str(PurePosixPath(relative).parent))
        yield SourceItem(name, label, path=str(path))


def _member_reason(name, kind_reason, size, options):
    return (
        kind_reason
        or _unsafe_reason(name)
        or (None if is_image_name(name) else "not_an_image")
        or ("too_large_file" if size > options.max_file_bytes else None)
    )


def _tar_kind_reason(member):
    if member.issym() or member.islnk():
        return "link"
    return None if member.isfile() else "special_file"


def _tar_items(path, options, tally, limit):
    try:
        # "r|*": a forward-only stream, so a 100 GB tar needs neither seeking nor scratch space.
        archive = tarfile.open(path, mode="r|*")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise SourceError(path, f"not a readable tar archive ({err})") from None
    with archive:
        try:
            for member in archive:
                if member.isdir():
                    continue
                reason = _member_reason(member.name, _tar_kind_reason(member), member.size, options)
                if reason:
                    tally.skip(f"{path.name}/{member.name}", reason)
                    continue
                data = archive.extractfile(member).read()
                yield SourceItem(f"{path.name}/{member.name}", options.label_of(member.name), data=data)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
            # A truncated or corrupt stream ends the archive; what was read before it is kept.
            tally.skip(path.name, "truncated_archive", str(err) or type(err).__name__)


def _zip_kind_reason(info):
    # The Unix file type, when the zip was made on Unix. 0 says nothing (zipfile's writestr and many other
    # tools store only permission bits, or nothing) and is taken as a regular file.
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return "link"
    return None if kind in (0, stat.S_IFREG) else "special_file"


def _zip_items(path, options, tally, limit):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise SourceError(path, f"not a readable zip archive ({err})") from None
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = f"{path.name}/{info.filename}"
            reason = _member_reason(info.filename, _zip_kind_reason(info), info.file_size, options)
            if reason:
                tally.skip(name, reason)
                continue
            try:
                with archive.open(info) as member:
                    # Read one byte past the cap: a member that inflates beyond its declared size is a bomb.
                    data = member.read(options.max_file_bytes + 1)
            except (zipfile.BadZipFile, zlib.error, OSError, NotImplementedError, RuntimeError) as err:
                tally.skip(name, "corrupt_member", str(err) or type(err).__name__)
                continue
            if len(data) > options.max_file_bytes:
                tally.skip(name, "too_large_file")
                continue
            yield SourceItem(name, options.label_of(info.filename), data=data)


def read_unsplash_rows(path, tally, limit=None):
    """(photo id, URL) pairs from an Unsplash photos.tsv file; rows with bad fields or URLs, or an id met
    before (it would be the same download file), are counted."""
    rows, ids = [], set()
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as stream:
            header = stream.readline().rstrip("\r\n").split("\t")
            if URL_COLUMN not in header:
                raise SourceError(path, f"no {URL_COLUMN} column: is it an Unsplash photos.tsv file?")
            url_at = header.index(URL_COLUMN)
            id_at = header.index(ID_COLUMN) if ID_COLUMN in header else None
            for line in stream:
                if limit is not None and len(rows) == limit:
                    break
                fields = line.rstrip("\r\n").split("\t")
                url = fields[url_at].strip() if len(fields) == len(header) else ""
                parts = urlsplit(url)
                if parts.scheme not in ("http", "https") or not parts.netloc:
                    tally.skipped["bad_row"] += 1
                    continue
                photo_id = fields[id_at] if id_at is not None else ""
                if not SAFE_ID.fullmatch(photo_id):  # the id becomes a file name: never trust it as a path
                    photo_id = hashlib.sha1(url.encode()).hexdigest()[:16]
                if photo_id in ids:
                    tally.skipped["duplicate_id"] += 1
                    continue
                ids.add(photo_id)
                rows.append((photo_id, url))
    except OSError as err:
        raise SourceError(path, f"cannot read ({err.strerror or err})") from None
    return rows


def sized_url(url, width):
    """Ask Unsplash's image server (imgix) for a `width`-px JPEG instead of the multi-megabyte original."""
    if width is None or urlsplit(url).query:
        return url
    return f"{url}?w={width}&fm=jpg&q=90"


def _unsplash_items(path, options, tally, limit):
    if options.download_dir is None:
        raise SourceError(path, "an Unsplash TSV needs a download folder")
    rows = read_unsplash_rows(path, tally, limit)
    folder = Path(options.download_dir) / re.sub(r"[^A-Za-z0-9_.-]", "_", path.name)
    jobs = [(sized_url(url, options.request_width), folder / f"{photo_id}.jpg") for photo_id, url in rows]
    with tqdm(total=len(jobs), desc="downloading", unit="file", disable=None) as bar:
        outcomes = download_files(jobs, options.download, on_done=lambda _: bar.update())
    for (photo_id, url), (_, dest), outcome in zip(rows, jobs, outcomes, strict=True):
        if outcome in ("downloaded", "present"):
            tally.downloads[outcome] += 1
            yield SourceItem(f"{path.name}/{photo_id}", path=str(dest))
        else:
            tally.skip(f"{path.name}/{photo_id}", f"download_{outcome}", url)


_READERS = {
    "folder": _folder_items,
    "tar": _tar_items,
    "zip": _zip_items,
    "places-list": _places_items,
    "unsplash-tsv": _unsplash_items,
}
