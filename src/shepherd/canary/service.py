"""The canary's cycle: collect a snapshot, run the checks, persist what fired, alert on changes.

One cycle at a time per process (a second ``run_cycle`` while one runs is a ``Conflict``: the
API's 409), and one replica at a time fleet-wide (it runs under the leased controller loop).
Alerts go through the alert engine, one source per invariant (``canary.S-01``) so a cycle over a
few ids never clears the others' incidents: an incident opens on green -> red, a continuing red
stays quiet (no reminders), red -> green -> red opens a new one. Only invariants red now or red
at the previous cycle are handed to the engine, so a green fleet costs no alert writes. The board
(each invariant red or green since when) changes are ``canary.changed`` fleet events for live
viewers; an invariant first seen green is no news and makes none.

Must not: write anything but ``canary_violations``, alert states and fleet events; act on what it
finds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from shepherd.alerts.red_sources import RedSources
from shepherd.alerts.service import AlertService
from shepherd.canary.collect import Collector
from shepherd.canary.invariants import REGISTRY, Violation, evaluate
from shepherd.core.alerting import AlertAction, AlertPolicy
from shepherd.core.clock import Clock
from shepherd.core.fleet_events import FleetChange, canary_changed
from shepherd.core.signals import Signal, SignalKey
from shepherd.errors import ConfigError, Conflict
from shepherd.stores.sql.database import Database
from shepherd.stores.sql.violations import NewViolation
from shepherd.telemetry import Telemetry

log = logging.getLogger("shepherd.canary")
SOURCE_PREFIX = "canary."
# Violations are kept a week: enough to look back over an incident and a weekend.
RETENTION_MS = 7 * 86_400_000
# A cycle or self-test asked on demand waits this long for a running cycle to end before a 409:
# a cycle takes well under a second on a fleet of hundreds.
EXCLUSIVE_WAIT_S = 10.0
# One alert per incident, and its recovery: a continuing red stays quiet (no reminders). Dwell is
# applied before a violation counts at all (``_past_dwell``), so the engine needs no pending time.
QUIET = AlertPolicy(realert_s=None)


@dataclass(frozen=True, slots=True)
class CycleResult:
    cycle_at_ms: int
    duration_ms: float
    checked: tuple[str, ...]
    violations: tuple[Violation, ...]
    violation_ids: tuple[int, ...]
    transitions: tuple[str, ...]  # invariant ids that went green -> red this cycle
    recovered: tuple[str, ...]  # invariant ids that went red -> green
    sources_unavailable: tuple[str, ...]
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class CanaryReport:
    """The loop's summary of a cycle (list sizes go to the controller report)."""

    violations: list[str] = field(default_factory=list)
    transitions: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)


class CanaryService:
    name = "canary"

    def __init__(
        self, db: Database, collector: Collector, alerts: AlertService | None, clock: Clock,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._db = db
        self._collector = collector
        self._alerts = alerts
        self._clock = clock
        self._lock = asyncio.Lock()
        self._red = RedSources()  # which invariants the alert engine last saw red
        self.last: CycleResult | None = None
        self._first_seen: dict[tuple[str, str], int] = {}  # (id, entity) -> first sighting
        # id -> (red, when it last turned red or green), for the dashboard's board
        self.board: dict[str, tuple[bool, int]] = {}
        self.exclusive_wait_s = EXCLUSIVE_WAIT_S
        t = telemetry or Telemetry()
        self._fired = t.counter("shepherd_canary_violations",
                                "Violations found by the canary, by invariant.", ["invariant"])
        self._broken = t.counter("shepherd_canary_check_errors",
                                 "Canary checks that raised instead of answering.", ["invariant"])

    async def run_once(self) -> CanaryReport:
        if self._lock.locked():  # a cycle on demand or the self-test holds the canary
            return CanaryReport()
        result = await self.run_cycle()
        return CanaryReport([f"{v.invariant_id} {v.entity}" for v in result.violations],
                            list(result.transitions), list(result.sources_unavailable))

    async def run_cycle(self, ids: Iterable[str] | None = None) -> CycleResult:
        """One cycle over ``ids`` (all when None), after the one running, if any
        (``exclusive``)."""
        chosen = _chosen(ids)
        async with self.exclusive():
            return await self.cycle(chosen)

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the canary: no other cycle starts meanwhile. One asked on demand while another
        runs (a periodic cycle, most often) waits for it up to ``exclusive_wait_s``, then is a
        ``Conflict``."""
        try:
            async with asyncio.timeout(self.exclusive_wait_s):
                await self._lock.acquire()
        except TimeoutError:
            raise Conflict(f"a canary cycle is already running (for more than "
                           f"{self.exclusive_wait_s:g} s); try again when it ends") from None
        try:
            yield
        finally:
            self._lock.release()

    def controller_intervals(self) -> dict[str, float]:
        return self._collector.controller_intervals()

    async def cycle(
        self, chosen: list[str] | None, *, alert: bool = True, persist: bool = True
    ) -> CycleResult:
        """Collect, check, persist, alert; the caller holds ``exclusive()``."""
        started = time.perf_counter()
        snapshot = await self._collector.collect()
        run = evaluate(snapshot, chosen)
        found = self._past_dwell(run.checked, run.violations, snapshot.now_ms)
        for iid, error in run.failed.items():
            log.error("canary: check %s raised: %s", iid, error)
            self._broken.labels(iid).inc()
        ids_stored: list[int] = []
        if persist:
            for v in found:
                self._fired.labels(v.invariant_id).inc()
            ids_stored = await self._db.violations.record(
                snapshot.now_ms, [_new(v) for v in found], self._clock.now_ms(),
                snapshot.now_ms - RETENTION_MS,
            )
        transitions, recovered = await self._alert(run.checked, found) if alert \
            else ((), ())
        result = CycleResult(
            snapshot.now_ms, round((time.perf_counter() - started) * 1000, 3), run.checked,
            found, tuple(ids_stored), transitions, recovered,
            snapshot.sources_unavailable, dict(run.failed),
        )
        if persist:
            self.last = result
            changed = self._update_board(run.checked, found, snapshot.now_ms)
            await self._db.fleet_events.record(*(_board_event(iid, red, found)
                                                 for iid, red in changed))
        return result

    def _update_board(self, checked: tuple[str, ...], found: tuple[Violation, ...],
                      now_ms: int) -> list[tuple[str, bool]]:
        """Move the board; the invariants that changed colour (or were first seen red)."""
        red = {v.invariant_id for v in found}
        changed = []
        for iid in checked:
            before = self.board.get(iid)
            if before is None or before[0] != (iid in red):
                self.board[iid] = (iid in red, now_ms)
                if before is not None or iid in red:
                    changed.append((iid, iid in red))
        return changed

    def _past_dwell(
        self, checked: tuple[str, ...], found: tuple[Violation, ...], now_ms: int
    ) -> tuple[Violation, ...]:
        """The violations seen for at least their invariant's dwell (a zombie between a child's
        exit and its reaping is not one); the first sighting of each is remembered."""
        seen = {(v.invariant_id, v.entity) for v in found}
        self._first_seen = {k: t for k, t in self._first_seen.items()
                            if k in seen or k[0] not in checked}
        for key in seen:
            self._first_seen.setdefault(key, now_ms)
        return tuple(v for v in found if now_ms - self._first_seen[(v.invariant_id, v.entity)]
                     >= REGISTRY[v.invariant_id].dwell_s * 1000)

    async def _alert(
        self, checked: tuple[str, ...], found: tuple[Violation, ...]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if self._alerts is None:
            return (), ()
        red_now = {v.invariant_id for v in found}
        went_red, went_green = [], []
        for iid in checked:
            if not self._red.due(iid, iid in red_now):
                continue
            evaluation = await self._alerts.evaluate(
                SOURCE_PREFIX + iid, [_signal(v) for v in found if v.invariant_id == iid],
                policies={iid: QUIET},
            )
            self._red.record(iid, iid in red_now)
            actions = {d.action for d in evaluation.decisions}
            if AlertAction.ALERT in actions:
                went_red.append(iid)
            if AlertAction.RECOVERY in actions and iid not in red_now:
                went_green.append(iid)
        return tuple(went_red), tuple(went_green)


def _chosen(ids: Iterable[str] | None) -> list[str] | None:
    if ids is None:
        return None
    chosen = sorted(set(ids))
    unknown = [i for i in chosen if i not in REGISTRY]
    if unknown:
        raise ConfigError(f"unknown invariant id(s): {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(REGISTRY))}")
    return chosen


def _board_event(iid: str, red: bool, found: tuple[Violation, ...]) -> FleetChange:
    inv = REGISTRY[iid]
    mine = [v for v in found if v.invariant_id == iid]
    return canary_changed(iid, red, severity=inv.severity.value, tier=inv.tier.value,
                          title=inv.title, violations=len(mine),
                          message=mine[0].message if mine else None)


def _new(v: Violation) -> NewViolation:
    inv = REGISTRY[v.invariant_id]
    return NewViolation(v.invariant_id, v.entity, inv.tier.value, inv.severity.value, v.message,
                        dict(v.observed))


def _signal(v: Violation) -> Signal:
    inv = REGISTRY[v.invariant_id]
    entity = "".join(ch if ch.isalnum() or ch in "_.:/@-" else "_" for ch in v.entity)[:100]
    return Signal(
        SignalKey(SOURCE_PREFIX + v.invariant_id, v.invariant_id, entity or "fleet"),
        inv.severity, f"{v.invariant_id} {inv.title}: {v.message}",
        forensics=tuple(f"{k}: {value}" for k, value in sorted(v.observed.items())),
        runbook=inv.runbook,
    )
