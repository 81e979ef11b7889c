"""The one function that writes an execution's ``status``: a compare-and-set plus its event.

``apply_transition`` runs inside the caller's transaction. It reads the row's status (locking the
row on PostgreSQL; SQLite transactions here hold the write lock from BEGIN IMMEDIATE), checks it
against ``core.status``, updates only if the status is still the one read, and appends exactly one
``execution_events`` row when it won. A loser changes nothing and appends nothing. A transition
may carry outbox messages (a completion webhook): they are enqueued in the same transaction, only
when it wins, so a delivery exists exactly when its terminal status does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields as dataclass_fields
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shepherd.core.models import TransitionFields
from shepherd.core.outbox import OutboxMessage
from shepherd.core.status import Cause, ExecutionStatus, allowed_from
from shepherd.stores.sql.outbox import enqueue_in
from shepherd.stores.sql.rows import leftover_values
from shepherd.stores.sql.tables import execution_events, executions

_COLUMNS = tuple(f.name for f in dataclass_fields(TransitionFields) if f.name != "reset_dispatch")
_DISPATCH_COLUMNS = ("dispatched_at_ms", "started_at_ms", "pid", "runtime_boot_id")


def transition_values(
    to: ExecutionStatus, now_ms: int, fields: TransitionFields
) -> dict[str, Any]:
    """The columns a transition writes: status, the given fields, and the instants it implies."""
    values: dict[str, Any] = {"status": to.value}
    if fields.reset_dispatch:
        values.update(dict.fromkeys(_DISPATCH_COLUMNS))
    for name in _COLUMNS:
        value = getattr(fields, name)
        if value is not None:
            values[name] = leftover_values(value) if name == "leftovers" else value
    if to.is_terminal and "completed_at_ms" not in values:
        values["completed_at_ms"] = now_ms
    return values


async def apply_transition(
    conn: AsyncConnection,
    execution_id: str,
    to: ExecutionStatus,
    cause: Cause,
    *,
    actor: str,
    now_ms: int,
    reason: str | None,
    fields: TransitionFields,
    outbox: Sequence[OutboxMessage] = (),
) -> bool:
    allowed = allowed_from(to, cause)
    if not allowed:
        return False
    seen = await conn.scalar(
        select(executions.c.status).where(executions.c.id == execution_id).with_for_update()
    )
    if seen is None or ExecutionStatus(seen) not in allowed:
        return False
    result = await conn.execute(
        update(executions)
        .where(executions.c.id == execution_id, executions.c.status == seen)
        .values(**transition_values(to, now_ms, fields))
    )
    if result.rowcount != 1:
        return False
    await conn.execute(
        insert(execution_events).values(
            execution_id=execution_id, from_status=seen, to_status=to.value, cause=cause.value,
            actor=actor, reason=reason, at_ms=now_ms,
        )
    )
    await enqueue_in(conn, outbox, now_ms)
    return True
