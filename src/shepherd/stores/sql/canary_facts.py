"""The canary's view of SQL: everything its checks need, in one read-only transaction.

One query per table (the caller has read the agents already): active executions, executions
finished within the recent window (with their retry originals), reversals (rows whose status
differs from the terminal status their event log recorded), schedules, references to the
deleted agents named by the caller, the admission's backlog count, and the instance id. Never
writes.

E-02's "side table" of terminal ids is the event log itself: a terminal event is written in the
same transaction as the terminal status and never deleted, so comparing the two finds every
reversal with its real prior status, however long ago the row ended. Active rows are checked
against their whole log (there are few of them); terminal rows only within the recent window,
which keeps the read bounded on a large history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shepherd.core.redaction import holds_credential
from shepherd.core.status import TERMINAL, ExecutionStatus
from shepherd.stores.sql.errors import translated
from shepherd.stores.sql.tables import (
    agent_tags,
    api_tokens,
    execution_events,
    executions,
    meta,
    schedules,
)

_TERMINAL = [s.value for s in TERMINAL]
_ACTIVE = [s.value for s in ExecutionStatus if s not in TERMINAL]


@dataclass(frozen=True, slots=True)
class SqlRow:
    id: str
    agent: str
    status: str
    timeout_s: int
    created_at_ms: int
    queued_at_ms: int | None
    dispatched_at_ms: int | None
    started_at_ms: int | None
    finished_at_ms: int | None
    completed_at_ms: int | None
    pid: int | None
    boot_id: str | None
    schedule_id: str | None
    retry_of: str | None
    retry_agent: str | None
    retry_schedule: str | None
    input_ok: bool
    holds_credential: bool


@dataclass(frozen=True, slots=True)
class SqlReversal:
    id: str
    agent: str
    ended_as: str
    now: str


@dataclass(frozen=True, slots=True)
class SqlSchedule:
    id: str
    agent: str
    enabled: bool
    next_run_at_ms: int | None


@dataclass(frozen=True, slots=True)
class SqlFacts:
    active: tuple[SqlRow, ...]
    recent: tuple[SqlRow, ...]
    reversals: tuple[SqlReversal, ...]
    schedules: tuple[SqlSchedule, ...]
    references: dict[str, tuple[str, ...]]
    queued_counted: dict[str, int]
    instance_id: str | None


_ROW_FIELDS = [f.name for f in fields(SqlRow)][:16]


class CanaryFacts:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def read(self, recent_since_ms: int, deleted: Sequence[str]) -> SqlFacts:
        """``deleted``: the deleted agents whose leftover references are looked for."""
        async with translated("read the canary's facts"), self._engine.connect() as conn:
            return SqlFacts(
                active=await _rows(conn, executions.c.status.in_(_ACTIVE)),
                recent=await _rows(conn, and_(executions.c.status.in_(_TERMINAL),
                                              executions.c.completed_at_ms >= recent_since_ms)),
                reversals=await _reversals(conn, recent_since_ms),
                schedules=await _schedules(conn),
                references=await _references(conn, deleted),
                queued_counted=await _queued_counted(conn),
                instance_id=await conn.scalar(
                    select(meta.c.value).where(meta.c.key == "instance_id")),
            )


async def _rows(conn: AsyncConnection, where: object) -> tuple[SqlRow, ...]:
    e = executions.c
    original = executions.alias("original")
    query = (
        select(e.id, e.agent, e.status, e.timeout_s, e.created_at_ms, e.queued_at_ms,
               e.dispatched_at_ms, e.started_at_ms, e.finished_at_ms, e.completed_at_ms, e.pid,
               e.runtime_boot_id, e.schedule_id, e.retry_of, original.c.agent,
               original.c.schedule_id, e.input, e.error, e.output_tail)
        .select_from(executions.outerjoin(original, original.c.id == e.retry_of))
        .where(where)  # type: ignore[arg-type]
    )
    out = []
    for r in await conn.execute(query):
        texts = " ".join(t for t in (r[16], r[17], r[18]) if t)
        plain = dict(zip(_ROW_FIELDS, r[:16], strict=True))
        out.append(SqlRow(**plain, input_ok="\x00" not in (r[16] or ""),
                          holds_credential=holds_credential(texts)))
    return tuple(out)


async def _reversals(conn: AsyncConnection, recent_since_ms: int) -> tuple[SqlReversal, ...]:
    e, ev = executions.c, execution_events.c
    ended = (
        select(e.id, e.agent, ev.to_status, e.status)
        .select_from(executions.join(execution_events, ev.execution_id == e.id))
        .where(ev.to_status.in_(_TERMINAL), ev.to_status != e.status,
               e.status.in_(_ACTIVE) | (e.completed_at_ms >= recent_since_ms))
    )
    return tuple(SqlReversal(*r) for r in await conn.execute(ended))


async def _schedules(conn: AsyncConnection) -> tuple[SqlSchedule, ...]:
    c = schedules.c
    result = await conn.execute(select(c.id, c.agent, c.enabled, c.next_run_at_ms))
    return tuple(SqlSchedule(r[0], r[1], bool(r[2]), r[3]) for r in result)


async def _references(conn: AsyncConnection, deleted: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """What still names each deleted agent: schedules, tags, scoped tokens, unfinished rows."""
    if not deleted:
        return {}
    found: dict[str, list[str]] = {name: [] for name in deleted}
    lookups = (
        ("schedule", select(schedules.c.agent, schedules.c.id)
         .where(schedules.c.agent.in_(deleted))),
        ("tag", select(agent_tags.c.agent, agent_tags.c.tag)
         .where(agent_tags.c.agent.in_(deleted))),
        ("token", select(api_tokens.c.agent_scope, api_tokens.c.id)
         .where(api_tokens.c.agent_scope.in_(deleted))),
        ("execution", select(executions.c.agent, executions.c.id)
         .where(executions.c.agent.in_(deleted), executions.c.status.in_(_ACTIVE))),
    )
    for kind, query in lookups:
        for agent, ident in await conn.execute(query):
            found[agent].append(f"{kind} {ident}")
    return {name: tuple(refs) for name, refs in found.items()}


async def _queued_counted(conn: AsyncConnection) -> dict[str, int]:
    c = executions.c
    result = await conn.execute(
        select(c.agent, func.count()).where(c.status == ExecutionStatus.QUEUED.value)
        .group_by(c.agent)
    )
    return {agent: int(count) for agent, count in result}
