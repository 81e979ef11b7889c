"""Cron arithmetic for the scheduler: when a schedule fires next, and what a misfire does.

Pure: the caller passes ``now_ms``. Time zones are IANA names; a schedule's wall-clock times are
read in its own zone, so ``0 9 * * *`` in ``Europe/Paris`` fires at 09:00 Paris time across DST.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter


@dataclass(frozen=True, slots=True)
class Firing:
    """One decision for one due schedule: fire once (even after many missed ticks), then move on."""

    fire: bool
    scheduled_for_ms: int | None  # the tick being fired (the latest one missed)
    next_run_at_ms: int
    missed: int  # ticks skipped over because the control plane was down


def next_after_ms(cron: str, timezone: str, after_ms: int) -> int:
    """The first tick of ``cron`` strictly after ``after_ms``."""
    start = datetime.fromtimestamp(after_ms / 1000, tz=ZoneInfo(timezone))
    nxt = croniter(cron, start).get_next(datetime)
    return int(nxt.astimezone(UTC).timestamp() * 1000)


def decide_firing(cron: str, timezone: str, next_run_at_ms: int | None, now_ms: int) -> Firing:
    """What a scheduler tick does with one schedule.

    A schedule never fired (``next_run_at_ms`` is None) is only armed. A due schedule fires once,
    for its latest missed tick, however many ticks passed while nothing ran (misfires fire once,
    not N times), and its next run is the first tick after ``now_ms``.
    """
    upcoming = next_after_ms(cron, timezone, now_ms)
    if next_run_at_ms is None:
        return Firing(fire=False, scheduled_for_ms=None, next_run_at_ms=upcoming, missed=0)
    if next_run_at_ms > now_ms:
        return Firing(fire=False, scheduled_for_ms=None, next_run_at_ms=next_run_at_ms, missed=0)
    latest, missed = next_run_at_ms, 0
    while True:
        candidate = next_after_ms(cron, timezone, latest)
        if candidate > now_ms:
            break
        latest, missed = candidate, missed + 1
    return Firing(fire=True, scheduled_for_ms=latest, next_run_at_ms=upcoming, missed=missed)
