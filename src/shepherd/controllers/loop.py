"""The generic controller loop: leadership, ticks, crash backoff, last-tick bookkeeping.

A singleton controller runs only while it holds ``lease:controller:{name}``, so several
``shepherd serve`` replicas can run side by side; each successful ``run_once`` records its tick in
memory and at ``controller:{name}:tick_at`` (invariant G-02), and a summary of its report (when,
how long, the size of every list in it) at ``controller:{name}:last_report``, which any replica's
API can show. Passes woken by events can come hundreds of times a second: a leader that renewed
its lease within ``base.LEASE_RECHECK_S`` runs the next pass without renewing it again, and a
tick is written to Redis at most every ``TICK_RECORD_S`` (always the first). A crash inside
``run_once`` is logged and retried after the next interval; it never ends the loop. A store that
is down (``StoreError``: Redis or SQL unreachable) is not a crash: it is retried every tick as
well, but written without a traceback and at most once a minute for all loops sharing one
``LogThrottle``, and once more when the stores answer again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from shepherd.controllers.base import Controller, RecentRenewals, Wakeup
from shepherd.core.clock import Clock
from shepherd.errors import StoreError
from shepherd.log_throttle import LogThrottle
from shepherd.stores.redis.connection import RedisHandle
from shepherd.telemetry import Telemetry

log = logging.getLogger("shepherd.controllers")
# Readers of the recorded tick (/metrics, the canary's G-02) count in seconds.
TICK_RECORD_S = 0.25


@dataclass(frozen=True, slots=True)
class LoopConfig:
    interval_s: float
    singleton: bool = True


class ControllerLoop:
    def __init__(
        self,
        controller: Controller,
        config: LoopConfig,
        redis: RedisHandle,
        clock: Clock,
        owner: str,
        wakeup: Wakeup | None = None,
        telemetry: Telemetry | None = None,
        quiet: LogThrottle | None = None,
    ) -> None:
        self.controller = controller
        self.config = config
        self._redis = redis
        self._clock = clock
        self._owner = owner
        self._wakeup = wakeup or Wakeup()
        self.last_tick_ms: int | None = None
        self.last_report: object | None = None
        self.failures = 0
        self.is_leader = not config.singleton
        self._renewals = RecentRenewals()
        self._recorded_at = float("-inf")
        self._quiet = quiet or LogThrottle(log)
        telemetry = telemetry or Telemetry()
        self._tick_seconds = telemetry.histogram(
            "shepherd_controller_tick_seconds", "Duration of a controller pass.", ["controller"]
        ).labels(controller=controller.name)
        self._tick_failures = telemetry.counter(
            "shepherd_controller_tick_failures", "Controller passes that raised.", ["controller"]
        ).labels(controller=controller.name)

    @property
    def name(self) -> str:
        return self.controller.name

    @property
    def _lease_key(self) -> str:
        return self._redis.keys.controller_lease(self.name)

    @property
    def _lease_ttl_ms(self) -> int:
        # Three missed ticks (at least 5 s) before another replica may take over.
        return max(5_000, int(self.config.interval_s * 3_000))

    async def tick(self) -> None:
        """One pass: make sure of leadership, run once, record the tick."""
        if self.config.singleton and not await self._lead():
            return
        started = time.perf_counter()
        self.last_report = await self.controller.run_once()
        duration_s = time.perf_counter() - started
        self._tick_seconds.observe(duration_s)
        self.last_tick_ms = self._clock.now_ms()
        now = time.monotonic()
        if now - self._recorded_at < TICK_RECORD_S:
            return
        self._recorded_at = now
        summary = {"tick_at_ms": self.last_tick_ms, "duration_ms": round(duration_s * 1000, 3),
                   "report": summarize_report(self.last_report)}
        await self._redis.ticks.record_controller(self.name, self.last_tick_ms,
                                                  json.dumps(summary))

    async def run(self) -> None:
        """Tick forever; the guarded task around this restarts it should it ever raise."""
        try:
            while True:
                try:
                    await self.tick()
                except asyncio.CancelledError:
                    raise
                except StoreError as exc:
                    self._count_failure()
                    self._quiet.log("store", logging.WARNING, "controllers: a store is "
                                    "unavailable, retrying every tick (%s: %s)", self.name,
                                    exc.message)
                except Exception:
                    self._count_failure()
                    log.exception("controller %s: tick failed", self.name)
                else:
                    if self._quiet.clear("store"):
                        log.warning("controllers: the stores answer again")
                await self._wakeup.wait(self.config.interval_s)
        finally:
            if self.is_leader and self.config.singleton:
                await asyncio.shield(self._resign())

    def _count_failure(self) -> None:
        self.failures += 1
        self._tick_failures.inc()

    async def _lead(self) -> bool:
        # Renew first, whatever we believe (a loop restarted after a crash still owns its lease),
        # unless this loop renewed it a moment ago.
        if self.is_leader and self._renewals.fresh(self._lease_key):
            return True
        asked_at = time.monotonic()
        leases, was_leader = self._redis.leases, self.is_leader
        self.is_leader = await leases.renew(self._lease_key, self._owner, self._lease_ttl_ms)
        if not self.is_leader:
            if was_leader:
                log.warning("controller %s: lost its lease", self.name)
            self.is_leader = await leases.acquire(self._lease_key, self._owner, self._lease_ttl_ms)
        if self.is_leader:
            self._renewals.held(self._lease_key, asked_at)
        return self.is_leader

    async def _resign(self) -> None:
        try:
            await self._redis.leases.release(self._lease_key, self._owner)
        except Exception:
            log.warning("controller %s: could not release its lease", self.name, exc_info=True)
        self.is_leader = False


def summarize_report(report: object) -> dict[str, Any]:
    """A report as JSON-safe counts: a list becomes its length, a number or string stays."""
    if not is_dataclass(report) or isinstance(report, type):
        return {}
    summary: dict[str, Any] = {}
    for item in fields(report):
        value = getattr(report, item.name)
        if isinstance(value, list | tuple | set | dict):
            summary[item.name] = len(value)
        elif value is None or isinstance(value, int | float | str | bool):
            summary[item.name] = value
    return summary
