"""The batch job: colorize planned jobs one by one, never touching inputs, each failure contained.

Image by image (the default), each worker thread takes one image from file to file, with torch
single-threaded on CPU. With --batch-size > 1, same-size images share one network call on the main
thread while workers read and write (image codecs release the GIL). Every output is written
atomically, so a file under its final name is always complete, and an interrupted batch resumes by
skipping outputs that exist. A full or read-only output disk stops the batch: every later image would
fail the same way.
"""

import dataclasses
import errno
import time
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from colorize_cli import __version__
from colorize_cli.colorize.diagnostics import write_diagnostics
from colorize_cli.photos import scratch
from colorize_cli.photos.io import (
    ImageReadError,
    holds_16_bits,
    read_lightness,
    read_luminance,
    write_image,
)
from colorize_cli.photos.lightness import Lightness

# Write errors that every later output would meet too.
STOP_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


@dataclass
class BatchOptions:
    """How outputs are written."""

    overwrite: bool = False
    quality: int = 95
    diagnostics: bool = False
    workers: int = 2
    batch_size: int = 1


@dataclass
class Result:
    """What happened to one job; `status` is done, skipped or failed."""

    source: str
    output: str
    status: str
    error: str | None = None
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)

    def as_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "timings"}


def ai_tag(colorizer):
    """The note written into every output so that no archive mistakes it for an original."""
    model = colorizer.header.get("model", colorizer.model.name)
    return f"AI-colorized by colorize {__version__} (model {model}); colours are predicted, not original"


def run_batch(jobs, colorizer, options=BatchOptions(), should_stop=lambda: False):
    """Colorize `jobs` in order, yielding a Result for each.

    The batch stops early when `should_stop()` turns true (a signal) or a write fails on a full or read-only
    disk (STOP_ERRNOS): the images in flight are finished and reported, the rest get no Result.
    """
    todo = []
    for job in jobs:
        if job.error:
            yield Result(str(job.source), str(job.output), "failed", error=job.error)
        elif job.output.exists() and not options.overwrite:
            yield Result(str(job.source), str(job.output), "skipped")
        else:
            todo.append(job)
    if options.batch_size == 1:
        yield from _image_by_image(todo, colorizer, options, should_stop)
    else:
        yield from _grouped(todo, colorizer, options, should_stop)


def _image_by_image(todo, colorizer, options, should_stop):
    """Each worker thread takes one image from file to file; torch runs single-threaded on CPU.

    On a CPU, per-image parallelism beats torch's intra-op threads here: the colour maths gains nothing
    from a second OpenMP thread at these sizes, and OpenMP from several Python threads oversubscribes.
    """
    workers = max(1, options.workers)
    threads = 1 if colorizer.device.type == "cpu" else None
    with _torch_threads(threads), ThreadPoolExecutor(max_workers=workers) as pool:
        in_flight, upcoming, stop = deque(), iter(todo), False
        while not stop:
            while len(in_flight) < workers and (job := next(upcoming, None)) is not None:
                in_flight.append((job, time.perf_counter(), pool.submit(_colorize_file, job, colorizer, options)))
            if not in_flight:
                break
            result, full = _finish(*in_flight.popleft())
            yield result
            stop = full or should_stop()
        for job, started, future in in_flight:
            if not future.cancel():  # started before the stop: finished and reported
                yield _finish(job, started, future)[0]


def _colorize_file(job, colorizer, options):
    # One image from file to file on this thread: its full-size arrays are done with when it returns, so
    # they live in the thread's scratch buffers (no fresh pages, and their faults, per image).
    # A gray photo stays as its codes: L is looked up inside the shrink to the working size and the render.
    clock = time.perf_counter()
    lightness, photo = read_lightness(job.source, scratch.allocator("L"), scratch.allocator("codes"))
    photo = _output_profile(photo, job.source)
    timings = {"read": time.perf_counter() - clock}
    clock = time.perf_counter()
    low = colorizer.predict_low_of(lightness).split()[0]
    timings["network"] = time.perf_counter() - clock
    rgb = _render(job, lightness, photo, low, timings, colorizer, scratch.allocator("rgb"))
    return _write(job, lightness, photo, low, rgb, timings, colorizer, options)


def _grouped(todo, colorizer, options, should_stop):
    """Same-size images share one network call on the main thread (--batch-size, for GPUs); workers read and write."""
    workers = max(1, options.workers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reads, writes = deque(), deque()
        upcoming = iter(todo)

        def queue_reads():
            while len(reads) < workers + options.batch_size:
                job = next(upcoming, None)
                if job is None:
                    return
                reads.append((job, time.perf_counter(), pool.submit(_read, job.source)))

        queue_reads()
        stop = False
        while reads and not stop:
            batch = [reads.popleft() for _ in range(min(options.batch_size, len(reads)))]
            queue_reads()
            for job, started, outcome in _predict_batch(colorizer, batch):
                writes.append((job, started, _render_then_write(pool, job, outcome, colorizer, options)))
            while len(writes) > workers:
                result, full = _finish(*writes.popleft())
                yield result
                stop = stop or full
            stop = stop or should_stop()
        for _, _, future in reads:  # read ahead, never to be written after a stop
            future.cancel()
        while writes:
            yield _finish(*writes.popleft())[0]


@contextmanager
def _torch_threads(count):
    """torch's intra-op thread count set to `count` for the block (None: unchanged)."""
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _predict_batch(colorizer, batch):
    """Run the network once per group of same-size images; yields (job, started, outcome) in order.

    The outcome is (Lightness, photo, low, timings) or the exception that stopped this image.
    """
    outcomes = {}
    by_shape = {}
    for index, (job, started, future) in enumerate(batch):
        try:
            lightness, photo, read_seconds = future.result()
        except Exception as err:  # noqa: BLE001 - one bad file must not stop the batch
            outcomes[index] = err
            continue
        by_shape.setdefault(lightness.shape, []).append((index, lightness, photo, read_seconds))
    for group in by_shape.values():
        clock = time.perf_counter()
        try:
            stacked = torch.stack([torch.from_numpy(lightness.samples) for _, lightness, _, _ in group])[:, None]
            lows = colorizer.predict_low(stacked).split()
        except Exception as err:  # noqa: BLE001 - e.g. out of memory: these images fail, the batch goes on
            outcomes.update((index, err) for index, *_ in group)
            continue
        network_seconds = (time.perf_counter() - clock) / len(group)
        for (index, lightness, photo, read_seconds), low in zip(group, lows):
            outcomes[index] = (lightness, photo, low, {"read": read_seconds, "network": network_seconds})
    for index, (job, started, _) in enumerate(batch):
        yield job, started, outcomes[index]


def _read(source, allocate=np.empty):
    clock = time.perf_counter()
    L, photo = read_luminance(source, allocate)
    return Lightness(L), _output_profile(photo, source), time.perf_counter() - clock


def _output_profile(photo, source):
    """The photo with the profile its colour output can carry: a colour one still applies, a gray one cannot
    describe RGB pixels (said, as the gray levels are then taken as sRGB's)."""
    if photo.colour or photo.icc_profile is None:
        return photo
    warnings.warn(f"{source}: its gray ICC profile cannot describe a colour result and is not carried over; "
                  "its gray levels are taken as sRGB's", stacklevel=2)
    return dataclasses.replace(photo, icc_profile=None)


def _render(job, lightness, photo, low, timings, colorizer, allocate=np.empty):
    """The output pixels of one image (16-bit where the input and the output format hold 16 bits)."""
    clock = time.perf_counter()
    sixteen = photo.bit_depth == 16 and holds_16_bits(job.output)
    rgb = colorizer.colorize_lightness(lightness, bit_depth=16 if sixteen else 8, low=low, allocate=allocate)
    timings["colour"] = time.perf_counter() - clock
    return rgb


def _render_then_write(pool, job, outcome, colorizer, options):
    """Render on this thread (torch's threads serve it), write in the pool: the Future of the image's timings."""
    if isinstance(outcome, Exception):
        return _failed_future(outcome)
    lightness, photo, low, timings = outcome
    try:
        rgb = _render(job, lightness, photo, low, timings, colorizer)
    except Exception as err:  # noqa: BLE001 - e.g. out of memory: this image fails, the batch goes on
        return _failed_future(err)
    return pool.submit(_write, job, lightness, photo, low, rgb, timings, colorizer, options)


def _write(job, lightness, photo, low, rgb, timings, colorizer, options):
    clock = time.perf_counter()
    job.output.parent.mkdir(parents=True, exist_ok=True)
    if options.diagnostics:
        # Written before the output: an existing output then means its diagnostics exist too.
        write_diagnostics(job.output, lightness.values(), low, rgb, colorizer, timings)
    write_image(
        job.output, rgb, quality=options.quality, exif=photo.exif, icc_profile=photo.icc_profile,
        description=ai_tag(colorizer),
    )
    timings["write"] = time.perf_counter() - clock
    return timings


def _failed_future(err):
    future = Future()
    future.set_exception(err)
    return future


def _finish(job, started, future):
    """The Result of a job, and whether its failure stops the batch."""
    try:
        timings = future.result()
    except Exception as err:  # noqa: BLE001 - reported per file, the batch goes on
        result = Result(str(job.source), str(job.output), "failed", error=_cause(err),
                        seconds=time.perf_counter() - started)
        return result, isinstance(err, OSError) and err.errno in STOP_ERRNOS
    return Result(str(job.source), str(job.output), "done", seconds=time.perf_counter() - started,
                  timings=timings), False


def _cause(err):
    """The cause of a failure on one line, without the path (the caller names the file)."""
    if isinstance(err, ImageReadError):
        return err.cause
    return f"{type(err).__name__}: {' '.join(str(err).split())}"
