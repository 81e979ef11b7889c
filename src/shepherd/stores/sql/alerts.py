"""Alert state in SQL: one row per signal key, changed together with the deliveries it causes.

``transact`` runs one evaluation of a source in ONE transaction: it reads (and locks) the source's
rows, hands them to a pure ``plan`` callback, writes the states it returns with a compare-and-set
on ``version``, and enqueues its outbox messages. A write whose version moved (another replica
evaluated the same source meanwhile) or whose key appeared meanwhile fails the whole transaction
(``Conflict``), so no alert is ever enqueued twice. Clear states older than the retention are
pruned in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shepherd.core.alerting import AlertPhase, AlertState
from shepherd.core.outbox import OutboxMessage
from shepherd.core.signals import Severity, SignalKey
from shepherd.errors import Conflict
from shepherd.stores.sql.errors import translated
from shepherd.stores.sql.outbox import enqueue_in
from shepherd.stores.sql.tables import alert_states


@dataclass(frozen=True, slots=True)
class StoredAlert:
    key: SignalKey
    state: AlertState
    severity: Severity
    summary: str
    forensics: tuple[str, ...] = ()
    forensic_total: int = 0
    runbook: str | None = None
    version: int = 0  # 0: not stored yet
    updated_at_ms: int = 0


@dataclass(frozen=True, slots=True)
class AlertChanges:
    """What one evaluation writes: new states (``version`` as read) and deliveries."""

    states: Sequence[StoredAlert] = ()
    messages: Sequence[OutboxMessage] = ()
    result: Any = None  # whatever the planner wants handed back to its caller


Planner = Callable[[dict[SignalKey, StoredAlert]], AlertChanges]


# A key that stayed clear this long is forgotten: a week of "last red" memory is plenty.
CLEAR_RETENTION_MS = 7 * 86_400_000


class AlertStateRepository:
    def __init__(self, engine: AsyncEngine, clear_retention_ms: int = CLEAR_RETENTION_MS) -> None:
        self.engine = engine
        self.clear_retention_ms = clear_retention_ms

    async def transact(self, source: str, plan: Planner, now_ms: int) -> AlertChanges:
        async with translated(f"evaluate alerts of {source!r}"), self.engine.begin() as conn:
            current = await _load(conn, source)
            changes = plan(current)
            for stored in changes.states:
                await _write(conn, stored, now_ms)
            await enqueue_in(conn, changes.messages, now_ms)
            c = alert_states.c
            await conn.execute(delete(alert_states).where(
                c.source == source, c.phase == AlertPhase.CLEAR.value,
                c.since_ms < now_ms - self.clear_retention_ms,
            ))
            return changes

    async def list(self, phase: AlertPhase | None = None, limit: int = 500) -> list[StoredAlert]:
        c = alert_states.c
        query = select(alert_states).order_by(c.since_ms.desc()).limit(limit)
        if phase is not None:
            query = query.where(c.phase == phase.value)
        async with translated("list alert states"), self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_stored(r) for r in rows]


async def _load(conn: AsyncConnection, source: str) -> dict[SignalKey, StoredAlert]:
    query = select(alert_states).where(alert_states.c.source == source).with_for_update()
    rows = (await conn.execute(query)).mappings().all()
    return {s.key: s for s in (_stored(r) for r in rows)}


async def _write(conn: AsyncConnection, stored: StoredAlert, now_ms: int) -> None:
    c, k, s = alert_states.c, stored.key, stored.state
    values = {
        "phase": s.phase.value, "since_ms": s.since_ms, "last_sent_ms": s.last_sent_ms,
        "last_red_ms": s.last_red_ms, "incidents": s.incidents,
        "severity": stored.severity.value, "summary": stored.summary,
        "detail": {"forensics": list(stored.forensics), "forensic_total": stored.forensic_total,
                   "runbook": stored.runbook},
        "version": stored.version + 1, "updated_at_ms": now_ms,
    }
    if stored.version == 0:
        # A concurrent insert of the same key fails on the primary key: the whole evaluation
        # rolls back, and its caller retries on the next cycle.
        await conn.execute(insert(alert_states).values(
            source=k.source, kind=k.kind, entity=k.entity, **values))
        return
    result = await conn.execute(update(alert_states).where(and_(
        c.source == k.source, c.kind == k.kind, c.entity == k.entity,
        c.version == stored.version,
    )).values(**values))
    if result.rowcount != 1:
        raise Conflict(f"alert state {k.label} changed during the evaluation; retry")


def _stored(row: Any) -> StoredAlert:
    detail = row["detail"] or {}
    return StoredAlert(
        key=SignalKey(row["source"], row["kind"], row["entity"]),
        state=AlertState(AlertPhase(row["phase"]), row["since_ms"], row["last_sent_ms"],
                         row["last_red_ms"], row["incidents"]),
        severity=Severity(row["severity"]), summary=row["summary"],
        forensics=tuple(detail.get("forensics") or ()),
        forensic_total=int(detail.get("forensic_total") or 0), runbook=detail.get("runbook"),
        version=row["version"], updated_at_ms=row["updated_at_ms"],
    )
