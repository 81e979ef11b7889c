"""The outbox: enqueue deliveries inside a caller's transaction, claim them with a CAS, settle them.

Guarantees: ``enqueue_in`` writes in the caller's transaction, so a delivery exists exactly when
the state change that caused it committed. ``claim`` is a compare-and-set (a pending row that is
due, or a sending row whose claim expired), so two senders never both hold a row; ``settle`` only
writes for the sender that still holds the claim, together with what the destination said
(rate-limited, gone) in the same transaction. No URL is stored here; ``last_error`` is a class
name or an HTTP status, never a message that could carry one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shepherd.core.clock import Clock
from shepherd.core.delivery import Settlement
from shepherd.core.outbox import (
    DeliveryStatus,
    DestinationState,
    OutboxMessage,
    PendingRow,
    SinkKind,
)
from shepherd.stores.sql.errors import translated
from shepherd.stores.sql.tables import outbox, outbox_destinations

D = DeliveryStatus
_UNSETTLED = (D.PENDING.value, D.SENDING.value)
_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    id: int
    destination: str
    sink: SinkKind
    topic: str
    subject: str
    idempotency_key: str
    payload: Any
    status: DeliveryStatus
    attempts: int
    created_at_ms: int
    expires_at_ms: int
    next_attempt_at_ms: int
    claimed_by: str | None
    claimed_until_ms: int | None
    delivered_at_ms: int | None
    last_error: str | None
    last_status_code: int | None


@dataclass(frozen=True, slots=True)
class DestinationVerdict:
    """What an attempt taught about its destination, written with the row's settlement."""

    destination: str
    blocked_until_ms: int
    fatal_reason: str | None = None
    fatal_fingerprint: str | None = None
    delivered: bool = False


async def enqueue_in(
    conn: AsyncConnection, messages: Sequence[OutboxMessage], now_ms: int
) -> int:
    """Insert ``messages`` as pending rows in the caller's transaction; returns how many."""
    if not messages:
        return 0
    await conn.execute(insert(outbox), [
        {
            "destination": m.destination, "sink": m.sink.value, "topic": m.topic,
            "subject": m.subject, "idempotency_key": m.idempotency_key, "payload": m.payload,
            "status": D.PENDING.value, "attempts": 0, "created_at_ms": now_ms,
            "expires_at_ms": now_ms + m.max_age_s * 1000, "next_attempt_at_ms": now_ms,
        }
        for m in messages
    ])
    return len(messages)


class OutboxRepository:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> int:
        async with translated("enqueue deliveries"), self._engine.begin() as conn:
            return await enqueue_in(conn, messages, self._clock.now_ms())

    async def unsettled(self, per_destination: int) -> list[PendingRow]:
        """The oldest pending or sending rows of EACH destination, in sending order (no
        payloads): a destination with a deep backlog (a dead receiver) never hides another's."""
        c = outbox.c
        rank = func.row_number().over(partition_by=c.destination, order_by=c.id).label("rank")
        ranked = (select(c.id, c.destination, c.sink, c.status, c.next_attempt_at_ms,
                         c.claimed_until_ms, rank)
                  .where(c.status.in_(_UNSETTLED)).subquery())
        query = select(ranked).where(ranked.c.rank <= per_destination).order_by(ranked.c.id)
        async with translated("read outbox"), self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [PendingRow(r[0], r[1], SinkKind(r[2]), D(r[3]), r[4], r[5]) for r in rows]

    async def claim(
        self, row_id: int, owner: str, now_ms: int, until_ms: int
    ) -> OutboxRecord | None:
        """CAS a due row to ``sending`` for ``owner`` until ``until_ms``; None if another won."""
        c = outbox.c
        claimable = or_(
            and_(c.status == D.PENDING.value, c.next_attempt_at_ms <= now_ms),
            and_(c.status == D.SENDING.value, c.claimed_until_ms < now_ms),
        )
        async with translated("claim delivery"), self._engine.begin() as conn:
            result = await conn.execute(
                update(outbox).where(c.id == row_id, claimable).values(
                    status=D.SENDING.value, claimed_by=owner, claimed_until_ms=until_ms,
                    attempts=c.attempts + 1,
                )
            )
            if result.rowcount != 1:
                return None
            row = (await conn.execute(select(outbox).where(c.id == row_id))).mappings().one()
        return _record(row)

    async def settle(
        self, row_id: int, owner: str, settlement: Settlement, status_code: int | None,
        learned: DestinationVerdict, now_ms: int,
    ) -> bool:
        """Write the attempt's outcome if ``owner`` still holds the row; False if it lost it."""
        c = outbox.c
        values: dict[str, Any] = {
            "status": settlement.status.value, "next_attempt_at_ms": settlement.next_attempt_at_ms,
            "claimed_by": None, "claimed_until_ms": None, "last_status_code": status_code,
            "last_error": _clip(settlement.error),
        }
        if settlement.status is D.DELIVERED:
            values["delivered_at_ms"] = now_ms
        async with translated("settle delivery"), self._engine.begin() as conn:
            result = await conn.execute(update(outbox).where(
                c.id == row_id, c.status == D.SENDING.value, c.claimed_by == owner,
            ).values(**values))
            if result.rowcount != 1:
                return False
            await _record_destination(conn, learned, now_ms)
            return True

    async def give_up(self, row_ids: Iterable[int], reason: str) -> int:
        """Mark unsettled rows dead with ``reason`` (their destination no longer exists)."""
        ids = list(row_ids)
        if not ids:
            return 0
        c = outbox.c
        async with translated("give up deliveries"), self._engine.begin() as conn:
            result = await conn.execute(update(outbox).where(
                c.id.in_(ids), c.status == D.PENDING.value,
            ).values(status=D.DEAD.value, last_error=_clip(reason)))
        return int(result.rowcount or 0)

    async def expire(self, now_ms: int) -> list[int]:
        """Give up every unsettled row past its max age (not one a live sender still holds)."""
        c = outbox.c
        old = and_(c.expires_at_ms < now_ms, or_(
            c.status == D.PENDING.value,
            and_(c.status == D.SENDING.value, c.claimed_until_ms < now_ms),
        ))
        async with translated("expire deliveries"), self._engine.begin() as conn:
            ids = list((await conn.execute(select(c.id).where(old))).scalars().all())
            if ids:
                await conn.execute(update(outbox).where(c.id.in_(ids), old).values(
                    status=D.DEAD.value, claimed_by=None, claimed_until_ms=None,
                    last_error=func.substr(
                        func.coalesce("expired: " + c.last_error, "expired"), 1, _ERROR_CHARS),
                ))
        return ids

    async def destination_states(self) -> dict[str, DestinationState]:
        d = outbox_destinations.c
        query = select(d.destination, d.fatal_reason, d.fatal_fingerprint, d.blocked_until_ms)
        async with translated("read destinations"), self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {r[0]: DestinationState(r[0], r[1], r[2], r[3]) for r in rows}

    async def revive(self, destination: str, now_ms: int) -> None:
        """Forget a destination's fatal verdict (its URL changed since)."""
        d = outbox_destinations.c
        async with translated("revive destination"), self._engine.begin() as conn:
            await conn.execute(update(outbox_destinations).where(d.destination == destination)
                               .values(fatal_reason=None, fatal_fingerprint=None,
                                       updated_at_ms=now_ms))

    async def destinations(self) -> list[dict[str, Any]]:
        async with translated("read destinations"), self._engine.connect() as conn:
            rows = (await conn.execute(select(outbox_destinations)
                                       .order_by(outbox_destinations.c.destination))).mappings()
            return [dict(r) for r in rows]

    async def list(
        self, *, topic: str | None = None, statuses: Sequence[DeliveryStatus] = (),
        destination: str | None = None, limit: int = 50,
    ) -> list[OutboxRecord]:
        """Newest first."""
        c = outbox.c
        query = select(outbox).order_by(c.id.desc()).limit(limit)
        if topic is not None:
            query = query.where(c.topic == topic)
        if statuses:
            query = query.where(c.status.in_([s.value for s in statuses]))
        if destination is not None:
            query = query.where(c.destination == destination)
        async with translated("list deliveries"), self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_record(r) for r in rows]

    async def counts(self) -> dict[tuple[str, str], int]:
        """(sink, status) -> rows."""
        c = outbox.c
        query = select(c.sink, c.status, func.count()).group_by(c.sink, c.status)
        async with translated("count deliveries"), self._engine.connect() as conn:
            return {(s, st): n for s, st, n in (await conn.execute(query)).all()}


async def _record_destination(
    conn: AsyncConnection, learned: DestinationVerdict, now_ms: int
) -> None:
    d = outbox_destinations.c
    values: dict[str, Any] = {"blocked_until_ms": learned.blocked_until_ms, "updated_at_ms": now_ms}
    if learned.fatal_reason is not None:
        values.update(fatal_reason=_clip(learned.fatal_reason),
                      fatal_fingerprint=learned.fatal_fingerprint)
    if learned.delivered:
        values.update(last_delivered_at_ms=now_ms, fatal_reason=None, fatal_fingerprint=None)
    # Insert-if-absent first: two senders settling for a new destination at once must not
    # collide on its primary key (PostgreSQL), then update the one row.
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(dialect_insert(outbox_destinations).values(
        destination=learned.destination, updated_at_ms=now_ms,
    ).on_conflict_do_nothing(index_elements=["destination"]))
    await conn.execute(update(outbox_destinations)
                       .where(d.destination == learned.destination).values(**values))


def _clip(text: str | None) -> str | None:
    return text[:_ERROR_CHARS] if text is not None else None


def _record(row: Any) -> OutboxRecord:
    return OutboxRecord(
        id=row["id"], destination=row["destination"], sink=SinkKind(row["sink"]),
        topic=row["topic"], subject=row["subject"], idempotency_key=row["idempotency_key"],
        payload=row["payload"], status=D(row["status"]), attempts=row["attempts"],
        created_at_ms=row["created_at_ms"], expires_at_ms=row["expires_at_ms"],
        next_attempt_at_ms=row["next_attempt_at_ms"], claimed_by=row["claimed_by"],
        claimed_until_ms=row["claimed_until_ms"], delivered_at_ms=row["delivered_at_ms"],
        last_error=row["last_error"], last_status_code=row["last_status_code"],
    )
