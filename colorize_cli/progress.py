"""Progress for batch commands: a bar on a terminal, one plain line per item otherwise."""

import contextlib
import sys

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)


def one_line(text):
    """`text` with control characters escaped (a file name may hold a newline), so that a report stays one line."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


class _Reporter:
    def __init__(self, progress, task, enabled):
        self.progress, self.task, self.enabled = progress, task, enabled

    def advance(self, result):
        if self.progress is not None:
            self.progress.advance(self.task)
        elif self.enabled and result.status != "failed":
            line = f"{result.status}: {result.source} -> {result.output} ({result.seconds:.2f}s)"
            click.echo(one_line(line), err=True)

    def error(self, line):
        # Errors are always shown, above the bar when there is one.
        line = one_line(line)
        if self.progress is not None:
            self.progress.console.print(line, markup=False, highlight=False)
        else:
            click.echo(line, err=True)


@contextlib.contextmanager
def progress_reporter(total, enabled=True):
    """Yield a reporter with advance(result) and error(line)."""
    if enabled and sys.stderr.isatty():
        columns = (TextColumn("colorizing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True)) as progress:
            yield _Reporter(progress, progress.add_task("colorize", total=total), enabled)
    else:
        yield _Reporter(None, None, enabled)
