"""File-system helpers: writes that never leave a half-written file behind."""

from __future__ import annotations

import glob
import hashlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

_LONGEST_NAME = 240  # of a file name kept in its temp file's name: ".NAME.tmp-" and 8 hex digits add 14 bytes


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path`, on any error it is removed."""
    path = Path(path)
    tmp = path.with_name(f"{_temp_prefix(path)}{secrets.token_hex(4)}")
    # O_EXCL claims the name; 0o666 lets the umask set the mode (mkstemp would make it owner-only).
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        _fsync(tmp, os.O_RDWR)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # A process killed mid-write (SIGKILL, power loss) leaves its temp file; the next good write clears it.
    for stale in path.parent.glob(glob.escape(_temp_prefix(path)) + "*"):
        with suppress(OSError):
            stale.unlink()
    if os.name == "posix":
        # Make the rename durable too; some file systems refuse to sync a folder, and the file is in place anyway.
        with suppress(OSError):
            _fsync(path.parent, os.O_RDONLY)


def _temp_prefix(path: Path) -> str:
    name = path.name
    if len(os.fsencode(name)) > _LONGEST_NAME:  # the temp name must fit the 255-byte limit of most file systems
        name = hashlib.sha256(os.fsencode(name)).hexdigest()[:32]
    return f".{name}.tmp-"


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
