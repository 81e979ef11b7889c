"""The one function that writes an execution's ``status``: a compare-and-set plus its event.

``apply_transition`` runs inside the caller's transaction. It reads the row's status (locking the
row on PostgreSQL; SQLite transactions here hold the write lock from BEGIN IMMEDIATE), checks it
against ``core.status``, updates only if the status is still the one read, and appends exactly one
``execution_events`` row when it won. A loser changes nothing and appends nothing. A transition
may carry outbox messages (a completion webhook): they are enqueued in the same transaction, only
when it wins, so a delivery exists exactly when its terminal status does. Every text it stores
(error, output tail, reason...) goes through ``core.text.storable_text`` first, so a NUL or a lone
surrogate from a child can never make a result unstorable.

Terminal is forever, whatever the ``status`` column says: the UPDATE also requires that the row's
event log holds no terminal event, so a row flipped back by hand (or by any bug) after it ended
can never be moved into a second terminal event. That guard is a condition of the same UPDATE
(an indexed ``NOT EXISTS`` on ``execution_events``), not an extra query. Because the status read
just before is locked, an UPDATE that then matches nothing can only be that guard: it is reported
as ``REFUSED`` and logged as an integrity error naming the execution.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import fields as dataclass_fields
from enum import Enum
from typing import Any

from sqlalchemy import exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shepherd.core.models import TransitionFields
from shepherd.core.outbox import OutboxMessage
from shepherd.core.status import TERMINAL, Cause, ExecutionStatus, allowed_from
from shepherd.core.text import storable_or_none, storable_text
from shepherd.stores.sql.outbox import enqueue_in
from shepherd.stores.sql.rows import leftover_values
from shepherd.stores.sql.tables import execution_events, executions

log = logging.getLogger("shepherd.stores.sql.transitions")

_COLUMNS = tuple(f.name for f in dataclass_fields(TransitionFields) if f.name != "reset_dispatch")
_DISPATCH_COLUMNS = ("dispatched_at_ms", "started_at_ms", "pid", "runtime_boot_id")
# Texts a transition stores come from children and runtimes: stored under ``core.text``'s rule,
# cut to the width of their column where it has one.
def column_width(column: Any) -> int | None:
    """The declared width of a ``String(n)`` column; None for unbounded text."""
    width = getattr(column.type, "length", None)
    return int(width) if width is not None else None


_TEXT_LIMITS = {name: column_width(executions.c[name]) for name in ("error_class",
                                                                    "runtime_boot_id")}
_TERMINAL_VALUES = tuple(sorted(s.value for s in TERMINAL))


class TransitionResult(Enum):
    WON = "won"
    LOST = "lost"  # not in an allowed from-status: another writer got there first
    REFUSED = "refused"  # allowed by its status, but its event log says it already ended


def transition_values(
    to: ExecutionStatus, now_ms: int, fields: TransitionFields
) -> dict[str, Any]:
    """The columns a transition writes: status, the given fields, and the instants it implies."""
    values: dict[str, Any] = {"status": to.value}
    if fields.reset_dispatch:
        values.update(dict.fromkeys(_DISPATCH_COLUMNS))
    for name in _COLUMNS:
        value = getattr(fields, name)
        if isinstance(value, str):
            value = storable_text(value, _TEXT_LIMITS.get(name))
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
) -> TransitionResult:
    allowed = allowed_from(to, cause)
    if not allowed:
        return TransitionResult.LOST
    seen = await conn.scalar(
        select(executions.c.status).where(executions.c.id == execution_id).with_for_update()
    )
    if seen is None or ExecutionStatus(seen) not in allowed:
        return TransitionResult.LOST
    ended = exists().where(
        execution_events.c.execution_id == execution_id,
        execution_events.c.to_status.in_(_TERMINAL_VALUES),
    )
    result = await conn.execute(
        update(executions)
        .where(executions.c.id == execution_id, executions.c.status == seen, ~ended)
        .values(**transition_values(to, now_ms, fields))
    )
    if result.rowcount != 1:
        return _refused_unless(False, execution_id, seen, to, cause, actor)
    await conn.execute(
        insert(execution_events).values(
            execution_id=execution_id, from_status=seen, to_status=to.value, cause=cause.value,
            actor=actor, reason=storable_or_none(reason), at_ms=now_ms,
        )
    )
    await enqueue_in(conn, outbox, now_ms)
    return TransitionResult.WON


async def apply_same_transition(
    conn: AsyncConnection,
    execution_ids: Sequence[str],
    to: ExecutionStatus,
    cause: Cause,
    *,
    actor: str,
    now_ms: int,
    fields: TransitionFields,
) -> dict[str, TransitionResult]:
    """``apply_transition`` of one target for many rows, in a few statements instead of three
    per row: the statuses read (locked) at once, one guarded UPDATE per status seen (RETURNING
    the rows it moved), one insert of all their events. Same guarantees, row by row: a row not
    in an allowed status is LOST, one whose log already ended is REFUSED and logged."""
    results = dict.fromkeys(execution_ids, TransitionResult.LOST)
    allowed = allowed_from(to, cause)
    if not allowed or not execution_ids:
        return results
    c = executions.c
    seen = dict((await conn.execute(
        select(c.id, c.status).where(c.id.in_(list(execution_ids))).with_for_update())).all())
    by_status: dict[str, list[str]] = {}
    for execution_id in execution_ids:
        status = seen.get(execution_id)
        if status is not None and ExecutionStatus(status) in allowed:
            by_status.setdefault(status, []).append(execution_id)
    ended = exists().where(execution_events.c.execution_id == c.id,
                           execution_events.c.to_status.in_(_TERMINAL_VALUES))
    values = transition_values(to, now_ms, fields)
    events = []
    for status, ids in by_status.items():
        moved = set((await conn.execute(
            update(executions).where(c.id.in_(ids), c.status == status, ~ended)
            .values(**values).returning(c.id))).scalars())
        for execution_id in ids:
            results[execution_id] = _refused_unless(execution_id in moved, execution_id,
                                                    status, to, cause, actor)
        events += [dict(execution_id=i, from_status=status, to_status=to.value,
                        cause=cause.value, actor=actor, reason=None, at_ms=now_ms)
                   for i in ids if i in moved]
    if events:
        await conn.execute(insert(execution_events), events)
    return results


def _refused_unless(
    won: bool, execution_id: str, seen: str, to: ExecutionStatus, cause: Cause, actor: str
) -> TransitionResult:
    if won:
        return TransitionResult.WON
    log.error(
        "integrity error: execution %s reads %s but its event log already holds a terminal "
        "event; refused %s -> %s (%s by %s)", execution_id, seen, seen, to.value, cause.value,
        actor,
    )
    return TransitionResult.REFUSED
