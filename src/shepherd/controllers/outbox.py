"""The outbox sender: delivers stored outbox rows (completion webhooks, alerts), at least once.

Each pass collects (gives up rows past their max age, reads the oldest unsettled rows, the
destinations' stored state and their URLs now), decides which rows to send (``core.outbox``:
per-destination concurrency and pacing, 429 blocks, fatal destinations, ordered alert sinks),
and applies: every row is claimed with a CAS before it is sent, and each send runs as its own
task, so a receiver that hangs holds only its own destination's slots, never the pass or another
destination. The result of an attempt (``core.delivery``) is written only if the claim is still
ours. A sender killed mid-send leaves a claim that expires; the next pass (here or in another
replica) sends the row again with the same idempotency key. URLs are resolved at send time and
never logged, stored or counted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from shepherd.controllers.base import Wakeup
from shepherd.controllers.delivery import Destinations, post_delivery
from shepherd.core.clock import Clock
from shepherd.core.delivery import AttemptResult, RetryPolicy, Verdict, decide_settlement
from shepherd.core.outbox import (
    DeliveryStatus,
    DestinationPolicy,
    SenderView,
    SinkKind,
    decide_sends,
    url_fingerprint,
)
from shepherd.errors import StoreError
from shepherd.stores.sql.database import Database
from shepherd.stores.sql.outbox import DestinationVerdict, OutboxRecord
from shepherd.telemetry import Telemetry

log = logging.getLogger("shepherd.controllers.outbox")

# A receiver gets this long to answer one delivery (connect to last byte).
DEFAULT_SEND_TIMEOUT_S = 10.0
# Completion webhooks to one agent's receiver in flight at once: a slow receiver is not starved.
DEFAULT_CONCURRENCY = 4
# Retries start after a second and back off to five minutes, the pace of a receiver's outage.
DEFAULT_RETRY = RetryPolicy(base_s=1.0, max_s=300.0)
# Slack asks for at most one message a second per webhook; the other alert sinks get the same.
ALERT_MIN_INTERVAL_MS = 1_000
# A claim outlives the send timeout by this margin before another pass may take the row.
CLAIM_MARGIN_MS = 5_000
# Rows read per destination and pass: more than one pass can start for any destination.
PER_DESTINATION = 64


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S
    concurrency: int = DEFAULT_CONCURRENCY
    retry: RetryPolicy = DEFAULT_RETRY
    alert_min_interval_ms: int = ALERT_MIN_INTERVAL_MS

    def policies(self) -> dict[SinkKind, DestinationPolicy]:
        alert = DestinationPolicy(1, self.alert_min_interval_ms, ordered=True)
        return {
            SinkKind.COMPLETION: DestinationPolicy(self.concurrency, 0, ordered=False),
            SinkKind.SLACK: alert, SinkKind.ALERTMANAGER: alert, SinkKind.WEBHOOK: alert,
        }


@dataclass(slots=True)
class OutboxReport:
    started: list[int] = field(default_factory=list)
    lost_claims: list[int] = field(default_factory=list)  # another sender claimed it first
    expired: list[int] = field(default_factory=list)
    abandoned: list[int] = field(default_factory=list)  # no destination any more
    revived: list[str] = field(default_factory=list)  # fatal destinations with a new URL


class OutboxSender:
    name = "outbox"

    def __init__(
        self, db: Database, clock: Clock, destinations: Destinations, *, owner: str,
        config: OutboxConfig | None = None, wakeup: Wakeup | None = None,
        telemetry: Telemetry | None = None, draw: Callable[[], float] = random.random,
    ) -> None:
        self._db = db
        self._clock = clock
        self._destinations = destinations
        self._owner = owner
        self._config = config or OutboxConfig()
        self._policies = self._config.policies()
        self._wakeup = wakeup or Wakeup()
        self._draw = draw
        self._flying: dict[str, set[int]] = {}
        self._last_start: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._client = httpx.AsyncClient(follow_redirects=False)
        telemetry = telemetry or Telemetry()
        self._attempts = telemetry.counter(
            "shepherd_outbox_attempts", "Delivery attempts by sink and verdict.",
            ["sink", "verdict"],
        )
        self._seconds = telemetry.histogram(
            "shepherd_outbox_attempt_seconds", "Duration of one delivery attempt.", ["sink"]
        )

    async def run_once(self) -> OutboxReport:
        report = OutboxReport()
        now_ms = self._clock.now_ms()
        report.expired = await self._db.outbox.expire(now_ms)
        for row_id in report.expired:
            log.warning("outbox: delivery %d given up: past its max age", row_id)
        rows = await self._db.outbox.unsettled(PER_DESTINATION)
        if not rows:
            return report
        states = await self._db.outbox.destination_states()
        urls = await self._destinations.resolve({r.destination for r in rows})
        fingerprints = {d: url_fingerprint(u) if u else None for d, u in urls.items()}
        view = SenderView({d: frozenset(ids) for d, ids in self._flying.items()},
                          dict(self._last_start))
        plan = decide_sends(rows, states, fingerprints, self._policies, view, now_ms)
        await self._db.outbox.give_up(plan.abandon, "no destination: not configured any more")
        report.abandoned = list(plan.abandon)
        for destination in plan.revive:
            await self._db.outbox.revive(destination, now_ms)
            report.revived.append(destination)
        for row_id in plan.send:
            await self._start(row_id, urls, now_ms, report)
        return report

    async def _start(
        self, row_id: int, urls: dict[str, str | None], now_ms: int, report: OutboxReport
    ) -> None:
        until_ms = now_ms + int(self._config.send_timeout_s * 1000) + CLAIM_MARGIN_MS
        record = await self._db.outbox.claim(row_id, self._owner, now_ms, until_ms)
        url = urls.get(record.destination) if record else None
        if record is None or url is None:
            report.lost_claims.append(row_id)
            return
        report.started.append(row_id)
        self._flying.setdefault(record.destination, set()).add(record.id)
        self._last_start[record.destination] = now_ms
        task = asyncio.create_task(self._deliver(record, url), name=f"outbox:{record.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, record: OutboxRecord, url: str) -> None:
        started = time.perf_counter()
        try:
            result = await post_delivery(self._client, url, record.payload,
                                         record.idempotency_key, self._config.send_timeout_s)
        except Exception as exc:  # a bug here must still settle the row, never kill the sender
            result = AttemptResult(error_class=type(exc).__name__)
        try:
            await self._settle(record, result, url_fingerprint(url))
        except StoreError as exc:
            log.warning("outbox: delivery %d not recorded (%s); its claim will expire and it is "
                        "sent again", record.id, exc.code)
        finally:
            self._seconds.labels(sink=record.sink.value).observe(time.perf_counter() - started)
            self._flying.get(record.destination, set()).discard(record.id)
            self._wakeup.poke()

    async def _settle(self, record: OutboxRecord, result: AttemptResult, fingerprint: str) -> None:
        now_ms = self._clock.now_ms()
        settlement = decide_settlement(record.sink, result, record.attempts,
                                       record.expires_at_ms, self._config.retry, now_ms,
                                       self._draw())
        fatal = settlement.verdict is Verdict.FATAL
        learned = DestinationVerdict(
            record.destination, settlement.blocked_until_ms,
            fatal_reason=result.describe() if fatal else None,
            fatal_fingerprint=fingerprint if fatal else None,
            delivered=settlement.verdict is Verdict.DELIVERED,
        )
        self._attempts.labels(sink=record.sink.value, verdict=settlement.verdict.value).inc()
        won = await self._db.outbox.settle(record.id, self._owner, settlement,
                                           result.status_code, learned, now_ms)
        if not won:
            log.info("outbox: delivery %d was claimed again before it settled", record.id)
        elif settlement.status is DeliveryStatus.DEAD:
            log.warning("outbox: delivery %d to %s given up: %s", record.id, record.destination,
                        settlement.error)
        elif fatal:
            log.warning("outbox: destination %s answered %s: stopped until its URL changes",
                        record.destination, result.describe())
        elif settlement.verdict is Verdict.RETRY:
            log.info("outbox: delivery %d to %s failed (%s); attempt %d, retried later",
                     record.id, record.destination, settlement.error, record.attempts)

    async def drain(self) -> None:
        """Wait for every send in flight (tests, and an orderly stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel sends in flight (their claims expire; the rows are sent again) and close."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._client.aclose()
