"""Which skips are failures, and the list that names them.

A failure is a file that should have been usable but could not be read (corrupt, truncated, missing, a
failed download); every other skip (too small, grey, a duplicate, a link, a `..` path) is a filter
doing its job. Failures are named on stderr and in stats.json, and make the command's exit code 1.
"""

from dataclasses import dataclass, field

FAILURE_REASONS = frozenset(
    {"unreadable", "missing_file", "unreadable_folder", "corrupt_member", "truncated_archive"}
)
NAMED = 50  # failures named per run: a dump with a million bad files still prints a screenful


def is_failure(reason):
    """True for a skip reason that means a file could not be read (the download cap is a filter)."""
    return reason in FAILURE_REASONS or (reason.startswith("download_") and reason != "download_too_large")


def failure_line(name, reason, detail=""):
    """`NAME: REASON (DETAIL)`: one failure, as printed after `error: `."""
    return f"{name}: {reason} ({detail})" if detail else f"{name}: {reason}"


@dataclass
class Failures:
    """Every failure counted; the first NAMED of them kept as lines."""

    count: int = 0
    named: list = field(default_factory=list)

    def add(self, line):
        self.count += 1
        if len(self.named) < NAMED:
            self.named.append(line)
