"""Throughput over the last hour, minute by minute: what the fleet page's chart and totals show.

The store counts terminal executions per (minute, status) since the first minute of the window;
``bucket_completions`` lays those counts on a fixed row of minutes (oldest first, the current,
partial minute last), so an idle minute is a zero and not a missing point. Pure: ``now_ms`` is
given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shepherd.core.status import ExecutionStatus

MINUTE_MS = 60_000
# The chart covers an hour: long enough to see a trend, short enough to read minute by minute.
CHART_MINUTES = 60
# executions/min is averaged over this many minutes: steady, yet quick to show a stall.
RATE_MINUTES = 5


@dataclass(frozen=True, slots=True)
class MinuteCounts:
    start_ms: int
    succeeded: int = 0
    failed: int = 0
    other: int = 0  # cancelled or skipped

    @property
    def total(self) -> int:
        return self.succeeded + self.failed + self.other


def window_start_ms(now_ms: int, minutes: int = CHART_MINUTES) -> int:
    """The first instant the window counts: the start of the oldest minute shown."""
    return (now_ms // MINUTE_MS - (minutes - 1)) * MINUTE_MS


def bucket_completions(
    rows: Iterable[tuple[int, str, int]], now_ms: int, minutes: int = CHART_MINUTES
) -> tuple[MinuteCounts, ...]:
    """``rows`` are (minute index = ms // 60000, status, count); out-of-window rows are ignored."""
    first = now_ms // MINUTE_MS - (minutes - 1)
    counts = [[0, 0, 0] for _ in range(minutes)]
    for minute, status, n in rows:
        index = minute - first
        if 0 <= index < minutes:
            counts[index][_column(status)] += n
    return tuple(
        MinuteCounts((first + i) * MINUTE_MS, s, f, o) for i, (s, f, o) in enumerate(counts)
    )


def _column(status: str) -> int:
    if status == ExecutionStatus.SUCCESS:
        return 0
    if status == ExecutionStatus.FAILED:
        return 1
    return 2


def per_minute(buckets: Sequence[MinuteCounts], now_ms: int, minutes: int = RATE_MINUTES) -> float:
    """Completions per minute over the last ``minutes``, the current partial minute included."""
    window = buckets[-minutes:]
    if not window:
        return 0.0
    covered = len(window) - 1 + (now_ms % MINUTE_MS) / MINUTE_MS
    return sum(b.total for b in window) / max(covered, 1.0)
