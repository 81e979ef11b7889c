"""Reading ``execution_events`` in id order, for live followers (the dashboard, ``/api/events``,
the demo's summary).

Each row comes with its execution's agent and schedule, which subscribers filter on, in the same
query (a join on the primary key), so following costs one indexed query per read however many
events it returns; a read takes no write lock on SQLite (``engine.reading``), so a follower
never waits behind another process's writes. ``read`` also fetches specific ids that a follower
is still waiting for (holes left by transactions that commit out of id order, see
``core.feed``).

Must not: write anything.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shepherd.core.events import TransitionRecord
from shepherd.core.ids import AgentName, ExecutionId
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.stores.sql.engine import reading
from shepherd.stores.sql.errors import translated
from shepherd.stores.sql.rows import to_event
from shepherd.stores.sql.tables import execution_events, executions


class TransitionFeedRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def head(self) -> int:
        """The highest event id so far (0 for none): where a follower of news only starts."""
        async with translated("read event head"), reading(self._engine) as conn:
            return int(await conn.scalar(select(func.max(execution_events.c.id))) or 0)

    async def read(
        self, after: int, limit: int, also: Collection[int] = ()
    ) -> list[TransitionRecord]:
        """Events with id > ``after`` (and the ids in ``also``), oldest first, at most ``limit``."""
        ev = execution_events.c
        newer = ev.id > after
        query = (
            select(execution_events, executions.c.agent, executions.c.schedule_id)
            .join(executions, executions.c.id == ev.execution_id)
            .where(or_(newer, ev.id.in_(sorted(also))) if also else newer)
            .order_by(ev.id)
            .limit(limit)
        )
        async with translated("read events"), reading(self._engine) as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [TransitionRecord(to_event(r), r["agent"], r["schedule_id"]) for r in rows]

    async def transitions_after(
        self, after_event_id: int, limit: int = 1000
    ) -> list[StatusChange]:
        """Status changes recorded after ``after_event_id``, oldest first (a cursor over the event
        log, for watchers that follow what happens without rescanning it)."""
        e, c = execution_events.c, executions.c
        query = (
            select(e.id, e.execution_id, c.agent, e.to_status, e.cause, c.error_class,
                   c.exit_code, e.at_ms)
            .join(executions, executions.c.id == e.execution_id)
            .where(e.id > after_event_id).order_by(e.id).limit(limit)
        )
        return [
            StatusChange(
                r["id"], ExecutionId(r["execution_id"]), AgentName(r["agent"]),
                ExecutionStatus(r["to_status"]), Cause(r["cause"]) if r["cause"] else None,
                r["error_class"], r["exit_code"], r["at_ms"])
            for r in await _rows(self._engine, query)
        ]


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One recorded status change with what a watcher needs about its execution."""

    event_id: int
    execution_id: ExecutionId
    agent: AgentName
    to_status: ExecutionStatus
    cause: Cause | None
    error_class: str | None
    exit_code: int | None
    at_ms: int


async def _rows(engine: AsyncEngine, query: Any) -> Sequence[Any]:
    async with translated("read events"), reading(engine) as conn:
        return (await conn.execute(query)).mappings().all()
