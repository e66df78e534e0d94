"""The one place that downloads: HTTP(S) files fetched with bounded parallelism, retries and a size cap.

A file under its final name is always complete (written to a `.part` file of its own, then renamed), so a
rerun skips what is already there and resumes the rest.
"""

import os
import random
import re
import secrets
import time
import urllib.error
import urllib.request
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from colorize_cli import __version__

CHUNK_BYTES = 1 << 16
# Worth another try: the server is busy or broken for a moment, not refusing this file for good.
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
PART_NAME = re.compile(r".+\.[0-9a-f]{8}\.part")  # DEST_NAME.RANDOM.part


@dataclass(frozen=True)
class DownloadOptions:
    """How hard to try: parallel requests, attempts per file, back-off, size cap, timeout."""

    workers: int = 8
    retries: int = 3
    backoff_s: float = 1.0
    max_bytes: int = 32 << 20
    timeout_s: float = 30.0


class _Failure(Exception):
    def __init__(self, reason, retry):
        super().__init__(reason)
        self.reason, self.retry = reason, retry


def _fetch_once(url, part, options):
    request = urllib.request.Request(url, headers={"User-Agent": f"colorize/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=options.timeout_s) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > options.max_bytes:
                raise _Failure("too_large", retry=False)
            received = 0
            with open(part, "wb") as out:
                while chunk := response.read(CHUNK_BYTES):
                    received += len(chunk)
                    # Servers may omit or understate Content-Length: the cap holds on the bytes themselves.
                    if received > options.max_bytes:
                        raise _Failure("too_large", retry=False)
                    out.write(chunk)
            if declared is not None and declared.isdigit() and received < int(declared):
                raise _Failure("incomplete", retry=True)
    except urllib.error.HTTPError as err:
        raise _Failure(f"http_{err.code}", retry=err.code in RETRY_STATUS) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        raise _Failure("network", retry=True) from err
    except OSError as err:  # http.client.IncompleteRead and friends are OSErrors too
        raise _Failure("network", retry=True) from err


def fetch(url, dest, options=DownloadOptions()):
    """Download `url` to `dest`; returns 'downloaded', 'present' (already there) or a failure reason."""
    dest = Path(dest)
    if dest.exists():
        return "present"
    if urlsplit(url).scheme not in ("http", "https"):
        return "bad_url"
    part = _claim_part(dest)
    attempt = 0
    try:
        while True:
            try:
                _fetch_once(url, part, options)
            except _Failure as failure:
                if not failure.retry or attempt == options.retries:
                    return failure.reason
                # Exponential back-off with jitter, so parallel workers do not retry in lockstep.
                time.sleep(options.backoff_s * 2**attempt * random.uniform(0.5, 1.0))
                attempt += 1
            else:
                os.replace(part, dest)
                return "downloaded"
    finally:
        part.unlink(missing_ok=True)


def _claim_part(dest):
    """A new, empty temp file beside `dest`, created exclusively: two writers of one `dest` never share it."""
    while True:
        part = dest.with_name(f"{dest.name}.{secrets.token_hex(4)}.part")
        try:
            os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return part
        except FileExistsError:
            continue


def _remove_stale_parts(folder):
    """Temp files left by a killed run (no temp file outlives a rerun); one run per folder at a time."""
    for path in folder.glob("*.part"):
        if PART_NAME.fullmatch(path.name):
            path.unlink(missing_ok=True)


def download_files(jobs, options=DownloadOptions(), on_done=None):
    """Fetch (url, dest) pairs with at most `options.workers` requests in flight; outcomes in job order.

    `on_done(outcome)` is called once per finished job (for a progress bar).
    """
    outcomes, folders = [], set()
    with ThreadPoolExecutor(max_workers=options.workers) as pool:
        pending = deque()
        # Submitting lazily keeps millions of rows from becoming millions of queued futures.
        for url, dest in jobs:
            folder = Path(dest).parent
            if folder not in folders:
                folder.mkdir(parents=True, exist_ok=True)
                _remove_stale_parts(folder)
                folders.add(folder)
            pending.append(pool.submit(fetch, url, dest, options))
            while len(pending) >= 2 * options.workers:
                outcomes.append(_finish(pending.popleft(), on_done))
        while pending:
            outcomes.append(_finish(pending.popleft(), on_done))
    return outcomes


def _finish(future, on_done):
    outcome = future.result()
    if on_done is not None:
        on_done(outcome)
    return outcome
