"""Aggregates the dashboard shows, each one query that an index answers: work in flight per
agent, completions per minute, the latest run of each schedule; and the finished runs by agent,
status and error class that ``/metrics`` turns into counters and a duration histogram.

Guarantees: the cost of each query follows what it returns (rows in flight, terminal rows of the
last hour, one row per schedule), not the size of the executions table; the indexes behind them
are ``ix_executions_status``, ``ix_executions_completed`` and ``ix_executions_schedule_latest``.
Each is a pure read, which on SQLite takes no write lock (``engine.reading``): the dashboard's
refreshes never queue behind the control plane's writers.
Must not: write anything.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shepherd.core.models import Execution
from shepherd.core.status import TERMINAL, ExecutionStatus
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

    async def finished_summary(
        self, bucket_bounds_s: Sequence[float]
    ) -> Sequence[FinishedSummary]:
        """Terminal rows grouped by agent, status and error class, with run-time bucket counts
        (started to child exit, cumulative per upper bound) for the rows that ran: one scan."""
        c = executions.c
        ran = and_(c.started_at_ms.is_not(None), c.finished_at_ms.is_not(None))
        duration_ms = c.finished_at_ms - c.started_at_ms
        buckets = [
            func.sum(case((and_(ran, duration_ms <= int(bound * 1000)), 1), else_=0))
            for bound in bucket_bounds_s
        ]
        query = (
            select(c.agent, c.status, c.error_class, func.count(),
                   func.sum(case((ran, 1), else_=0)),
                   func.sum(case((ran, duration_ms), else_=0)), *buckets)
            .where(c.status.in_([s.value for s in TERMINAL]))
            .group_by(c.agent, c.status, c.error_class)
        )
        async with translated("summarize finished executions"), self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            FinishedSummary(
                agent=r[0], status=r[1], error_class=r[2], count=int(r[3]), ran=int(r[4] or 0),
                run_time_ms=int(r[5] or 0), cumulative=tuple(int(n or 0) for n in r[6:]),
            )
            for r in rows
        ]


@dataclass(frozen=True, slots=True)
class FinishedSummary:
    """Terminal executions of one (agent, status, error class); ``cumulative[i]`` counts those
    that ran no longer than the i-th bucket bound, ``ran`` those that ran at all."""

    agent: str
    status: str
    error_class: str | None
    count: int
    ran: int
    run_time_ms: int
    cumulative: tuple[int, ...]
