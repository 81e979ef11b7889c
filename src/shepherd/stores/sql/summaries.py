"""Aggregates the dashboard shows, each one query that an index answers: work in flight per
agent, completions per minute, the latest run of each schedule.

Guarantees: the cost of each query follows what it returns (rows in flight, terminal rows of the
last hour, one row per schedule), not the size of the executions table; the indexes behind them
are ``ix_executions_status``, ``ix_executions_completed`` and ``ix_executions_schedule_latest``.
Each is a pure read, which on SQLite takes no write lock (``engine.reading``): the dashboard's
refreshes never queue behind the control plane's writers.
Must not: write anything.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shepherd.core.models import Execution
from shepherd.core.status import ExecutionStatus
from shepherd.core.throughput import MINUTE_MS
from shepherd.stores.sql.engine import reading
from shepherd.stores.sql.errors import translated
from shepherd.stores.sql.rows import to_execution
from shepherd.stores.sql.tables import executions

IN_FLIGHT = (
    ExecutionStatus.QUEUED.value, ExecutionStatus.RUNNING.value, ExecutionStatus.FINALIZING.value,
)


class SummaryRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def in_flight_counts(self) -> dict[tuple[str, str], int]:
        """(agent, status) -> rows, for queued, running and finalizing rows only."""
        c = executions.c
        query = (select(c.agent, c.status, func.count())
                 .where(c.status.in_(IN_FLIGHT)).group_by(c.agent, c.status))
        async with translated("count work in flight"), reading(self._engine) as conn:
            return {(a, s): int(n) for a, s, n in (await conn.execute(query)).all()}

    async def completions_by_minute(
        self, since_ms: int, agent: str | None = None
    ) -> list[tuple[int, str, int]]:
        """(minute index = completed_at_ms // 60000, status, count) for rows completed since."""
        c = executions.c
        minute = (c.completed_at_ms // MINUTE_MS).label("minute")
        query = select(minute, c.status, func.count()).where(c.completed_at_ms >= since_ms)
        if agent is not None:
            query = query.where(c.agent == agent)
        query = query.group_by(minute, c.status)
        async with translated("count completions"), reading(self._engine) as conn:
            return [(int(m), s, int(n)) for m, s, n in (await conn.execute(query)).all()]

    async def latest_of_schedules(self, schedule_ids: Collection[str]) -> dict[str, Execution]:
        """schedule id -> its newest execution, for those that have one."""
        if not schedule_ids:
            return {}
        c = executions.c
        newest = (select(func.max(c.id)).where(c.schedule_id.in_(sorted(schedule_ids)))
                  .group_by(c.schedule_id))
        query = select(executions).where(c.id.in_(newest))
        async with translated("latest runs of schedules"), reading(self._engine) as conn:
            rows = (await conn.execute(query)).mappings().all()
        found = [to_execution(r) for r in rows]
        return {e.schedule_id: e for e in found if e.schedule_id is not None}
