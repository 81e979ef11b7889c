"""The fleet page's chart: completions per minute over the last hour, as inline SVG geometry.

Drawn on the server from the store's counts, so there is no charting library, no script and no
request to anyone: each minute is a stacked bar (succeeded, failed, other), with a few gridlines
and time labels. The template turns this into ``<svg>``; every bar carries a text title and the
chart a text summary, so the numbers are there for a screen reader too.

Pure: geometry only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from shepherd.core.throughput import MinuteCounts

WIDTH = 960
HEIGHT = 200
LEFT = 36  # room for the y labels
BOTTOM = 22  # room for the x labels
TOP = 8
GAP = 2  # between bars
X_LABEL_EVERY = 15  # minutes


@dataclass(frozen=True, slots=True)
class Segment:
    kind: str  # succeeded | failed | other: the CSS class
    y: float
    height: float


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    segments: tuple[Segment, ...]
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    at: float  # x or y, in SVG units
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    left: int
    plot_bottom: float
    bars: tuple[Bar, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    summary: str


def throughput_chart(minutes: Sequence[MinuteCounts]) -> Chart:
    top = _nice_ceiling(max((m.total for m in minutes), default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    step = (WIDTH - LEFT) / max(len(minutes), 1)
    bars = tuple(_bar(m, LEFT + i * step, step, top, plot_h) for i, m in enumerate(minutes))
    y_ticks = tuple(Tick(TOP + plot_h - plot_h * v / top, str(v)) for v in (0, top // 2, top))
    x_ticks = tuple(
        Tick(LEFT + i * step, _clock(m.start_ms)) for i, m in enumerate(minutes)
        if i % X_LABEL_EVERY == 0
    )
    return Chart(WIDTH, HEIGHT, LEFT, TOP + plot_h, bars, y_ticks, x_ticks, _summary(minutes))


def _bar(m: MinuteCounts, x: float, step: float, top: int, plot_h: float) -> Bar:
    y = TOP + plot_h
    segments = []
    for kind, count in (("succeeded", m.succeeded), ("failed", m.failed), ("other", m.other)):
        if count:
            h = plot_h * count / top
            y -= h
            segments.append(Segment(kind, round(y, 2), round(h, 2)))
    title = (f"{_clock(m.start_ms)} UTC: {m.succeeded} succeeded, {m.failed} failed, "
             f"{m.other} cancelled or skipped")
    return Bar(round(x + GAP / 2, 2), round(max(step - GAP, 1), 2), tuple(segments), title)


def _nice_ceiling(value: int) -> int:
    """The y axis top: 1, 2, 5 x 10^n at or above ``value`` (at least 2, so halves are whole)."""
    magnitude = 1
    while True:
        for factor in (2, 5, 10):
            if value <= factor * magnitude:
                return factor * magnitude
        magnitude *= 10


def _clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M")


def _summary(minutes: Sequence[MinuteCounts]) -> str:
    done = sum(m.total for m in minutes)
    failed = sum(m.failed for m in minutes)
    busiest = max(minutes, key=lambda m: m.total, default=None)
    peak = f"; busiest minute {_clock(busiest.start_ms)} UTC with {busiest.total}" if (
        busiest and busiest.total) else ""
    return f"{done} executions finished in the last hour, {failed} of them failed{peak}."
