"""The sentinel: one scan of the host's processes turned into alert decisions, and its loop.

``run_once`` collects (the local runtimes' records, then the process table, read-only), decides
(pure: ``core.footprints`` finds what finished executions left behind, ``core.sentinel`` picks the
processes to watch and builds one signal each) and applies: the active signals go to the alert
engine (``AlertService.evaluate`` on the sentinel's own SQLite file: ALERT once, NONE within the
cooldown, REALERT after it, one RECOVERY when the process is gone), to the control plane when one
is configured, and the outbox sender delivers whatever the engine enqueued. ``run_forever``
repeats that every interval and drives the outbox sender between scans (the control plane's
``ControllerLoop`` needs Redis, which a sentinel host does not have).

Must not: signal a process, or read the process table when the sentinel is disabled (the caller
never builds one then).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from shepherd.alerts.service import AlertService, Decision
from shepherd.controllers.outbox import OutboxSender
from shepherd.core.alerting import AlertPolicy
from shepherd.core.clock import Clock
from shepherd.core.footprints import Footprint, keep_footprints, merge_footprints, trace_leftovers
from shepherd.core.sentinel import KIND, ProcessSignal, build_signals, sentinel_policy, watch
from shepherd.errors import ShepherdError
from shepherd.sentinel.collector import collect_process_table, read_details
from shepherd.sentinel.config import SentinelConfig
from shepherd.sentinel.footprints import FootprintMemory, read_runtime_footprints
from shepherd.sentinel.forward import Forwarded, Forwarder

log = logging.getLogger("shepherd.sentinel")

# Between scans the outbox sender runs this often, so an alert leaves within a second.
OUTBOX_TICK_S = 1.0


@dataclass(slots=True)
class SentinelReport:
    scanned: int = 0  # processes read
    watched: list[str] = field(default_factory=list)  # entities: matched or left behind
    active: list[str] = field(default_factory=list)  # entities older than the threshold
    decisions: list[Decision] = field(default_factory=list)  # local, every one but NONE
    forwarded: Forwarded | None = None  # the control plane's decisions, when it answered
    tracked: int = 0  # executions remembered
    signals: list[ProcessSignal] = field(default_factory=list, repr=False)


@dataclass(frozen=True, slots=True)
class SentinelParts:
    """What a sentinel talks to; built by ``shepherd.app.sentinel``."""

    alerts: AlertService
    memory: FootprintMemory
    runtime_dirs: Sequence[Path] = ()
    forwarder: Forwarder | None = None
    sender: OutboxSender | None = None


class Sentinel:
    def __init__(
        self, config: SentinelConfig, parts: SentinelParts, clock: Clock, *, source: str,
        exclude: frozenset[int] = frozenset(),
    ) -> None:
        self.config = config
        self.source = source
        self.policy: AlertPolicy = sentinel_policy(config.cooldown_s)
        self.parts = parts
        self._clock = clock
        self._exclude = exclude
        parts.alerts.register_policy(KIND, self.policy)
        self._remembered: dict[str, Footprint] = parts.memory.load()

    async def run_once(self) -> SentinelReport:
        now_ms = self._clock.now_ms()
        records = read_runtime_footprints(self.parts.runtime_dirs)
        footprints = merge_footprints(self._remembered, records, now_ms)
        rows = await asyncio.to_thread(collect_process_table, bool(footprints))
        trace = trace_leftovers(rows, footprints)
        self._remembered = keep_footprints(footprints, trace.live,
                                           frozenset(r.execution_id for r in records))
        self.parts.memory.save(self._remembered)
        watched = watch(rows, self.config.patterns, trace, self._exclude)
        detailed = await asyncio.to_thread(read_details, [w.row for w in watched])
        watched = [replace(w, row=detailed[w.row.pid]) for w in watched if w.row.pid in detailed]
        built = build_signals(watched, self.config.age_min_s, now_ms, self.source)
        active = [b.signal for b in built if b.active]
        evaluation = await self.parts.alerts.evaluate(self.source, active, now_ms=now_ms)
        report = SentinelReport(
            scanned=len(rows), watched=[b.signal.key.entity for b in built],
            active=[s.key.entity for s in active], decisions=list(evaluation.decisions),
            tracked=len(self._remembered), signals=built,
        )
        if self.parts.forwarder is not None:
            report.forwarded = await self.parts.forwarder.forward(self.source, active,
                                                                   self.policy)
        if self.parts.sender is not None:
            await self.parts.sender.run_once()
        return report

    async def run_forever(self) -> None:
        """Scan every interval; between scans, let the outbox sender deliver. A store failure
        costs one scan (logged), never the loop."""
        while True:
            deadline = time.monotonic() + self.config.interval_s
            try:
                await self.run_once()
            except ShepherdError as exc:
                log.warning("sentinel: scan failed (%s: %s); next scan in %.0f s", exc.code,
                            exc.message, self.config.interval_s)
            await self._wait_until(deadline)

    async def _wait_until(self, deadline: float) -> None:
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, OUTBOX_TICK_S))
            if self.parts.sender is not None:
                try:
                    await self.parts.sender.run_once()
                except ShepherdError as exc:
                    log.warning("sentinel: outbox pass failed (%s)", exc.code)

    async def close(self) -> None:
        if self.parts.sender is not None:
            await self.parts.sender.stop()
        if self.parts.forwarder is not None:
            await self.parts.forwarder.close()
