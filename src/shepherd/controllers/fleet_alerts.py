"""Fleet alerts: turns the watchdog's systemic verdict and dormant circuits into alerts.

Each pass collects the watchdog's last cycle (its stored detail) and the circuits of every agent,
lets ``core.fleet_signals`` say which signals are active, and hands each source's full set to the
alert service, which alerts on green -> red only and clears what is no longer reported. A
targeted watchdog cycle does not speak for the fleet: only a full cycle's verdict is taken, and
until one has been seen the systemic incident is left as it is.

Runs as a leased singleton loop. Writes nothing but alert states and their outbox rows (through
the alert service); it skips the alert service while nothing is active and nothing was.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shepherd.alerts.red_sources import RedSources
from shepherd.alerts.service import AlertService
from shepherd.core.clock import Clock
from shepherd.core.fleet_signals import SystemicState, decide_fleet_signals
from shepherd.core.signals import Signal
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database

log = logging.getLogger("shepherd.controllers.fleet_alerts")
WATCHDOG_REPORT = "watchdog"  # the controller whose stored detail carries the systemic verdict


@dataclass(slots=True)
class FleetAlertsReport:
    active: list[str] = field(default_factory=list)  # signal labels active this pass
    evaluated: list[str] = field(default_factory=list)  # sources handed to the alert service


class FleetAlerts:
    name = "fleet_alerts"

    def __init__(
        self, db: Database, redis: RedisHandle, alerts: AlertService, clock: Clock
    ) -> None:
        self._db = db
        self._redis = redis
        self._alerts = alerts
        self._clock = clock
        self._systemic: SystemicState | None = None
        self._red = RedSources()  # a restart re-evaluates each source once, whatever it finds

    async def run_once(self) -> FleetAlertsReport:
        report = FleetAlertsReport()
        self._systemic = _systemic_of(await self._redis.reports.detail(WATCHDOG_REPORT),
                                      self._systemic)
        names = [a.name for a in await self._db.agents.list() if a.enabled]
        circuits = await self._redis.circuits.read_many(names)
        signals = decide_fleet_signals(self._systemic, circuits.values(), self._clock.now_ms())
        for source, active in sorted(signals.items()):
            report.active.extend(s.key.label for s in active)
            if await self._evaluate(source, active):
                report.evaluated.append(source)
        return report

    async def _evaluate(self, source: str, active: list[Signal]) -> bool:
        if not self._red.due(source, bool(active)):
            return False  # green and it was green: nothing to decide
        await self._alerts.evaluate(source, active)
        self._red.record(source, bool(active))
        return True


def _systemic_of(
    detail: Mapping[str, Any] | None, known: SystemicState | None
) -> SystemicState | None:
    """The verdict of the watchdog's last full cycle, or what was known before."""
    if not detail or detail.get("scope") != "full":
        return known
    skipped = detail.get("skipped") or []
    unreachable = tuple(s.get("agent", "?") for s in skipped if s.get("reach") == "unreachable")
    agents = detail.get("agents") or []
    return SystemicState(bool(detail.get("systemic")), unreachable,
                         max(len(agents), len(skipped)))
