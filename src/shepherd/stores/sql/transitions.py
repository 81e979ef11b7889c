"""The one function that writes an execution's ``status``: compare-and-set plus its events.

``apply_chains`` runs inside the caller's transaction, for one execution or a page of them
(``core.writes``: each execution's writes in order, stopping at the first one lost). It reads
the rows' statuses, locking them (``FOR UPDATE`` on PostgreSQL; SQLite transactions here hold the
write lock from ``BEGIN IMMEDIATE``), checks every write against ``core.status``, then writes
what won in a fixed number of statements whatever the page size: one UPDATE per row (sent as one
batch; a chain's writes land as one UPDATE of their merged columns, so ``running -> finalizing
-> success`` is never seen half-way) and one insert of all their events, exactly one event per
write won. A loser changes nothing and appends nothing. A write may carry outbox messages (a
completion webhook): they are enqueued in the same transaction, only when it wins, so a delivery
exists exactly when its terminal status does. Every text it stores (error, output tail,
reason...) goes through ``core.text.storable_text`` first, so a NUL or a lone surrogate from a
child can never make a result unstorable.

Terminal is forever, whatever the ``status`` column says: a row whose event log already holds a
terminal event is never moved again. That is checked under the lock: on PostgreSQL in a statement
of its own (so its read-committed snapshot is taken after the lock was granted), on SQLite in the
statement that reads the statuses (the write lock is held since the transaction began), reported as
``REFUSED`` and logged as an integrity error naming the execution; the UPDATE repeats it as a
condition of its own (an indexed ``NOT EXISTS`` on ``execution_events``), and where the driver
counts the rows (SQLite; a single row on PostgreSQL) a count that disagrees rolls the whole
transaction back.

On PostgreSQL, a chain whose writer read its status (``WriteChain.seen``) is first tried by
``write_from_seen``: planned from that status, written in one statement outside any transaction
(``arrays.status_writes``: the same lock order, the same two guards, its events in the same
statement). What that statement did not write (the row had moved, its log had ended) is left to
``apply_chains``, which reads, decides and reports as above: the hint saves round trips, it never
decides an outcome. On SQLite, ``write_seen_in`` does the same inside the transaction, before
``apply_chains``, for the rows a statement can write without reading them first: a group of rows
that write the same values (a claim), or a batch of one row (a page of one exit); each group is
one ``UPDATE ... RETURNING`` under the same two guards, and the events of the rows it returned.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from enum import Enum
from typing import Any

from sqlalchemy import JSON, Update, bindparam, exists, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shepherd.core.models import TransitionFields
from shepherd.core.outbox import OutboxMessage
from shepherd.core.status import TERMINAL, ExecutionStatus, allowed_from
from shepherd.core.text import storable_or_none, storable_text
from shepherd.core.writes import StatusWrite, WriteChain
from shepherd.errors import SqlStoreError
from shepherd.stores.sql import arrays
from shepherd.stores.sql.engine import is_sqlite
from shepherd.stores.sql.outbox import enqueue_in
from shepherd.stores.sql.rows import leftover_values
from shepherd.stores.sql.tables import execution_events, executions

log = logging.getLogger("shepherd.stores.sql.transitions")

_COLUMNS = tuple(f.name for f in dataclass_fields(TransitionFields) if f.name != "reset_dispatch")
_DISPATCH_COLUMNS = ("dispatched_at_ms", "started_at_ms", "pid", "runtime_boot_id")
# The UPDATE's own parameters, named apart from the columns it sets.
_ID, _SEEN = "chain_id", "chain_seen"


def column_width(column: Any) -> int | None:
    """The declared width of a ``String(n)`` column; None for unbounded text."""
    width = getattr(column.type, "length", None)
    return int(width) if width is not None else None


# Texts a transition stores come from children and runtimes: stored under ``core.text``'s rule,
# cut to the width of their column where it has one.
_TEXT_LIMITS = {name: column_width(executions.c[name]) for name in ("error_class",
                                                                    "runtime_boot_id")}
_TERMINAL_VALUES = tuple(sorted(s.value for s in TERMINAL))

# The statements of every batch, built once (building one costs more than running it on SQLite).
_IDS = "chain_ids"
# Whether the row's event log holds a terminal event (one bound value per status: an expanding
# IN cannot be sent as a batch).
_ENDED_LOG = exists().where(execution_events.c.execution_id == executions.c.id,
                            execution_events.c.to_status.in_([literal(v) for v in
                                                              _TERMINAL_VALUES]))
_READ_WITH_LOG = (select(executions.c.id, executions.c.status, _ENDED_LOG)
                  .where(executions.c.id.in_(bindparam(_IDS, expanding=True)))
                  .order_by(executions.c.id))
# Locked in id order: two batches over the same rows never wait for each other in a cycle.
_READ_LOCKED = (select(executions.c.id, executions.c.status)
                .where(executions.c.id.in_(bindparam(_IDS, expanding=True)))
                .order_by(executions.c.id).with_for_update())
_ENDED_OF = (select(execution_events.c.execution_id).distinct()
             .where(execution_events.c.execution_id.in_(bindparam(_IDS, expanding=True)),
                    execution_events.c.to_status.in_(_TERMINAL_VALUES)))


@functools.lru_cache(maxsize=64)  # a handful of column sets in practice
def _update_of(columns: tuple[str, ...]) -> Update:
    """The guarded UPDATE of one set of columns: the status read, and no terminal event."""
    c = executions.c
    return (update(executions)
            .where(c.id == bindparam(_ID), c.status == bindparam(_SEEN), ~_ENDED_LOG)
            .values({name: bindparam(name) for name in columns}))


class TransitionResult(Enum):
    WON = "won"
    LOST = "lost"  # not in an allowed from-status: another writer got there first
    REFUSED = "refused"  # allowed by its status, but its event log says it already ended


@dataclass(slots=True)
class _Plan:
    """What one chain writes: the columns of its writes won, merged in order, and its events."""

    execution_id: str
    seen: str
    outcomes: list[TransitionResult] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[OutboxMessage] = field(default_factory=list)


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


async def apply_chains(
    conn: AsyncConnection, chains: Sequence[WriteChain], *, actor: str, now_ms: int
) -> list[list[TransitionResult]]:
    """Apply ``chains`` in the caller's transaction; per chain, the outcome of each write tried
    (all WON, or WONs then the one LOST or REFUSED that stopped it)."""
    ids = one_per_execution(chains)
    seen, ended = await _read_locked(conn, ids)
    plans = [_plan(chain, seen.get(chain.execution_id), chain.execution_id in ended, actor,
                   now_ms) for chain in chains]
    moved = [p for p in plans if p.events]
    await _update(conn, moved)
    if moved:
        await conn.execute(insert(execution_events), [e for p in moved for e in p.events])
        await enqueue_in(conn, [m for p in moved for m in p.outbox], now_ms)
    return [p.outcomes for p in plans]


def one_per_execution(chains: Sequence[WriteChain]) -> list[str]:
    """The chains' execution ids; two chains of one execution would be planned from one status
    read, and are refused before anything is written."""
    ids = [chain.execution_id for chain in chains]
    if len(set(ids)) != len(ids):
        raise ValueError("a batch of status writes takes one chain per execution")
    return ids


async def write_from_seen(
    conn: AsyncConnection, chains: Sequence[WriteChain], *, actor: str, now_ms: int
) -> dict[str, list[TransitionResult]]:
    """PostgreSQL, on a connection outside any transaction (``engine.one_statement``): every
    chain whose writer read its status (``WriteChain.seen``) and whose writes are all allowed
    from it, written from that status in one statement per set of columns (``arrays``); the
    outcomes of the chains written, every write won. A chain left out is the caller's to apply
    with ``apply_chains``: its row had moved or ended, or it carries a retry or an outbox
    message, which are written in the transaction of their status write."""
    plans = _hinted_plans(chains, actor, now_ms)
    batches: dict[tuple[str, ...], list[_Plan]] = {}
    for plan in plans:
        batches.setdefault(tuple(sorted(plan.values)), []).append(plan)
    written: set[str] = set()
    for columns, batch in batches.items():
        params: dict[str, Any] = {arrays.IDS: [p.execution_id for p in batch],
                                  arrays.SEEN: [p.seen for p in batch]}
        for name in columns:
            json_text = isinstance(executions.c[name].type, JSON)
            params[arrays.column_array(name)] = [
                json.dumps(p.values[name]) if json_text and p.values[name] is not None
                else p.values[name] for p in batch]
        for name in arrays.EVENT_COLUMNS:
            params[arrays.event_array(name)] = [e[name] for p in batch for e in p.events]
        statement = arrays.status_writes(columns, _TERMINAL_VALUES)
        written.update((await conn.execute(statement, params)).scalars())
    return {p.execution_id: p.outcomes for p in plans if p.execution_id in written}


async def write_seen_in(
    conn: AsyncConnection, chains: Sequence[WriteChain], *, actor: str, now_ms: int
) -> dict[str, list[TransitionResult]]:
    """SQLite, in the caller's transaction (which holds the write lock): the hinted chains a
    statement can write without reading their rows, written from the status their writer read;
    the outcomes of the chains written, every write won. Rows that write the same values go as
    one group, and a lone row alone; a batch of rows that each write their own values is left
    to ``apply_chains`` (one read and one batched UPDATE cost less than a statement per row),
    as are the rows a group's statement did not take (they moved, or their log ended)."""
    groups: dict[tuple[Any, ...], list[_Plan]] = {}
    for plan in _hinted_plans(chains, actor, now_ms):
        groups.setdefault(_same_values(plan), []).append(plan)
    if len(chains) > 1:
        groups = {key: batch for key, batch in groups.items() if len(batch) > 1}
    written: list[_Plan] = []
    for batch in groups.values():
        values = batch[0].values
        statement = _update_returning(tuple(sorted(values)))
        taken = set((await conn.execute(statement, {
            _IDS: [p.execution_id for p in batch], _SEEN: batch[0].seen, **values})).scalars())
        written += [p for p in batch if p.execution_id in taken]
    if written:
        await conn.execute(insert(execution_events), [e for p in written for e in p.events])
    return {p.execution_id: p.outcomes for p in written}


def _hinted_plans(chains: Sequence[WriteChain], actor: str, now_ms: int) -> list[_Plan]:
    """The chains a hint may write, planned from the status their writer read: those with a
    ``seen``, no retry and no outbox message (written in their status write's transaction), and
    every write allowed from it. Two chains of one execution are refused before anything."""
    one_per_execution(chains)
    plans = [_plan(chain, chain.seen.value, False, actor, now_ms) for chain in chains
             if chain.seen is not None
             and not any(w.retry is not None or w.outbox for w in chain.writes)]
    return [p for p in plans if p.outcomes and all(o is TransitionResult.WON for o in p.outcomes)]


def _same_values(plan: _Plan) -> tuple[Any, ...]:
    """What rows must share to be written by one statement: the status read and every value
    (a value that cannot be compared, such as the leftovers' list, keeps the row to itself)."""
    try:
        key = (plan.seen, tuple(sorted(plan.values.items())))
        hash(key)
    except TypeError:
        return (plan.execution_id,)
    return key


@functools.lru_cache(maxsize=64)
def _update_returning(columns: tuple[str, ...]) -> Update:
    """The guarded UPDATE of a group of rows setting the same values: the ids it took."""
    c = executions.c
    return (update(executions)
            .where(c.id.in_(bindparam(_IDS, expanding=True)), c.status == bindparam(_SEEN),
                   ~_ENDED_LOG)
            .values({name: bindparam(name) for name in columns})
            .returning(c.id))


async def _read_locked(conn: AsyncConnection, ids: list[str]) -> tuple[dict[str, str], set[str]]:
    """The rows' statuses, locked, and which of them already hold a terminal event."""
    if not ids:
        return {}, set()
    if is_sqlite(conn.engine):
        # The write lock is held since BEGIN IMMEDIATE: nothing commits under one statement.
        rows = (await conn.execute(_READ_WITH_LOG, {_IDS: ids})).all()
        return {row[0]: row[1] for row in rows}, {row[0] for row in rows if row[2]}
    seen = dict((await conn.execute(_READ_LOCKED, {_IDS: ids})).all())
    ended = set((await conn.execute(_ENDED_OF, {_IDS: list(seen)})).scalars()) if seen else set()
    return seen, ended


def _plan(
    chain: WriteChain, seen: str | None, ended: bool, actor: str, now_ms: int
) -> _Plan:
    plan = _Plan(chain.execution_id, seen or "")
    status = seen
    for write in chain.writes:
        outcome = _decide(write, status, ended)
        plan.outcomes.append(outcome)
        if outcome is TransitionResult.REFUSED:
            log.error("integrity error: execution %s reads %s but its event log already holds "
                      "a terminal event; refused %s -> %s (%s by %s)", chain.execution_id,
                      status, status, write.to.value, write.cause.value, actor)
        if outcome is not TransitionResult.WON:
            break
        plan.values.update(transition_values(write.to, now_ms, write.fields))
        plan.events.append(dict(
            execution_id=chain.execution_id, from_status=status, to_status=write.to.value,
            cause=write.cause.value, actor=actor, reason=storable_or_none(write.reason),
            at_ms=now_ms))
        plan.outbox.extend(write.outbox)
        status, ended = write.to.value, ended or write.to.is_terminal
    return plan


def _decide(write: StatusWrite, status: str | None, ended: bool) -> TransitionResult:
    if status is None or ExecutionStatus(status) not in allowed_from(write.to, write.cause):
        return TransitionResult.LOST
    return TransitionResult.REFUSED if ended else TransitionResult.WON


async def _update(conn: AsyncConnection, plans: list[_Plan]) -> None:
    """One UPDATE per row, rows setting the same columns sent as one batch, each guarded by the
    status read and by the event log (a row that already ended is never written)."""
    batches: dict[tuple[str, ...], list[_Plan]] = {}
    for plan in plans:
        batches.setdefault(tuple(sorted(plan.values)), []).append(plan)
    for columns, batch in batches.items():
        result = await conn.execute(_update_of(columns), [
            {_ID: p.execution_id, _SEEN: p.seen, **p.values} for p in batch])
        counted = len(batch) == 1 or conn.dialect.supports_sane_multi_rowcount
        if counted and result.rowcount != len(batch):
            raise SqlStoreError(
                f"integrity error: {len(batch) - result.rowcount} of {len(batch)} status "
                "writes changed under a held lock; none applied")
