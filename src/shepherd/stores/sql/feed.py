"""Reading ``execution_events`` in id order, for live followers (the dashboard, ``/api/events``).

Each row comes with its execution's agent and schedule, which subscribers filter on, in the same
query (a join on the primary key), so following costs one indexed query per read however many
events it returns; a read takes no write lock on SQLite (``engine.reading``), so a follower
never waits behind another process's writes. ``read`` also fetches specific ids that a follower
is still waiting for (holes left by transactions that commit out of id order, see
``core.feed``).

Must not: write anything.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shepherd.core.events import TransitionRecord
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
