"""Scheduler: turns due cron schedules into executions.

A due schedule fires once per tick, even after a long downtime (``core.cron.decide_firing``), and
its ``next_run_at_ms`` moves past now. Advancing the schedule (a CAS on ``next_run_at_ms``) and
recording the execution happen in one transaction (``Database.fire_schedule``), so two replicas
never fire one tick twice and a crash never advances a schedule without its run. The overlap
policy and the backlog bound are applied at admission (``core.admission``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shepherd.controllers.base import Wakeup
from shepherd.core.clock import Clock
from shepherd.core.cron import decide_firing
from shepherd.stores.sql.database import Database


@dataclass(slots=True)
class SchedulerReport:
    fired: list[str] = field(default_factory=list)  # execution ids (queued or skipped)
    armed: list[str] = field(default_factory=list)  # schedule ids given a first next_run_at
    missed: int = 0


class Scheduler:
    name = "scheduler"

    def __init__(
        self, db: Database, clock: Clock, *, dispatch_wakeup: Wakeup | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self._dispatch_wakeup = dispatch_wakeup

    async def run_once(self) -> SchedulerReport:
        now = self._clock.now_ms()
        report = SchedulerReport()
        for schedule in await self._db.schedules.due(now):
            firing = decide_firing(schedule.cron, schedule.timezone, schedule.next_run_at_ms, now)
            if not firing.fire:
                if await self._db.schedules.advance(
                    schedule.id, schedule.next_run_at_ms, schedule.last_run_at_ms,
                    firing.next_run_at_ms,
                ):
                    report.armed.append(schedule.id)
                continue
            execution = await self._db.fire_schedule(schedule, firing, now)
            if execution is not None:
                report.fired.append(execution.id)
                report.missed += firing.missed
        if report.fired and self._dispatch_wakeup is not None:
            self._dispatch_wakeup.poke()
        return report
