"""Schedules: CRUD, the scheduler's due query, and ``advance`` — a CAS on ``next_run_at_ms`` so
two schedulers never fire the same tick twice."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shepherd.core.clock import Clock
from shepherd.core.ids import AgentName, ScheduleId
from shepherd.core.models import OverlapPolicy, Schedule
from shepherd.errors import ScheduleNotFound
from shepherd.stores.sql.errors import translated
from shepherd.stores.sql.rows import to_schedule
from shepherd.stores.sql.tables import schedules

UPDATABLE = frozenset({"name", "cron", "timezone", "input", "timeout_s", "overlap", "enabled",
                       "next_run_at_ms", "last_run_at_ms", "max_attempts", "retry_on_failure"})


# ``list`` is also a method name below; this alias keeps annotations readable.
ScheduleList = list[Schedule]

class ScheduleRepository:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def create(
        self, *, agent: AgentName, cron: str, timezone: str = "UTC", input: str = "",
        timeout_s: int | None = None, overlap: OverlapPolicy = OverlapPolicy.SKIP,
        enabled: bool = True, next_run_at_ms: int | None = None, name: str | None = None,
        now_ms: int | None = None, max_attempts: int | None = None,
        retry_on_failure: bool | None = None,
    ) -> Schedule:
        schedule_id = ScheduleId(f"sch_{secrets.token_hex(8)}")
        async with translated("create schedule"), self._engine.begin() as conn:
            await conn.execute(insert(schedules).values(
                id=schedule_id, name=name, agent=agent, cron=cron, timezone=timezone,
                input=input, timeout_s=timeout_s, overlap=OverlapPolicy(overlap).value,
                enabled=enabled, next_run_at_ms=next_run_at_ms, last_run_at_ms=None,
                created_at_ms=now_ms if now_ms is not None else self._clock.now_ms(),
                max_attempts=max_attempts, retry_on_failure=retry_on_failure,
            ))
        return await self.get(schedule_id)

    async def find(self, schedule_id: str) -> Schedule | None:
        async with translated("read schedule"), self._engine.connect() as conn:
            row = (await conn.execute(select(schedules).where(schedules.c.id == schedule_id))
                   ).mappings().first()
        return to_schedule(row) if row else None

    async def get(self, schedule_id: str) -> Schedule:
        found = await self.find(schedule_id)
        if found is None:
            raise ScheduleNotFound(f"schedule {schedule_id!r} does not exist")
        return found

    async def list(self, agent: str | None = None) -> ScheduleList:
        query = select(schedules).order_by(schedules.c.created_at_ms, schedules.c.id)
        if agent is not None:
            query = query.where(schedules.c.agent == agent)
        async with translated("list schedules"), self._engine.connect() as conn:
            return [to_schedule(r) for r in (await conn.execute(query)).mappings().all()]

    async def update(self, schedule_id: str, **changes: Any) -> Schedule:
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise TypeError(f"unknown schedule fields: {sorted(unknown)}")
        if "overlap" in changes:
            changes["overlap"] = OverlapPolicy(changes["overlap"]).value
        await self.get(schedule_id)
        async with translated("update schedule"), self._engine.begin() as conn:
            await conn.execute(update(schedules).where(schedules.c.id == schedule_id)
                               .values(**changes))
        return await self.get(schedule_id)

    async def set_enabled(self, schedule_id: str, enabled: bool) -> Schedule:
        return await self.update(schedule_id, enabled=enabled)

    async def delete(self, schedule_id: str) -> None:
        async with translated("delete schedule"), self._engine.begin() as conn:
            result = await conn.execute(delete(schedules).where(schedules.c.id == schedule_id))
        if result.rowcount == 0:
            raise ScheduleNotFound(f"schedule {schedule_id!r} does not exist")

    async def due(self, now_ms: int) -> ScheduleList:
        """Enabled schedules whose next run has come, or that were never armed."""
        c = schedules.c
        query = select(schedules).where(
            c.enabled.is_(True), or_(c.next_run_at_ms.is_(None), c.next_run_at_ms <= now_ms)
        ).order_by(c.next_run_at_ms, c.id)
        async with translated("due schedules"), self._engine.connect() as conn:
            return [to_schedule(r) for r in (await conn.execute(query)).mappings().all()]

    async def advance(
        self, schedule_id: str, expected_next_run_at_ms: int | None,
        last_run_at_ms: int | None, next_run_at_ms: int,
    ) -> bool:
        async with translated("advance schedule"), self._engine.begin() as conn:
            return await self.advance_in(conn, schedule_id, expected_next_run_at_ms,
                                         last_run_at_ms, next_run_at_ms)

    @staticmethod
    async def advance_in(
        conn: AsyncConnection, schedule_id: str, expected_next_run_at_ms: int | None,
        last_run_at_ms: int | None, next_run_at_ms: int,
    ) -> bool:
        """CAS: move ``next_run_at_ms`` only if it is still what the caller read."""
        c = schedules.c
        expected = (c.next_run_at_ms.is_(None) if expected_next_run_at_ms is None
                    else c.next_run_at_ms == expected_next_run_at_ms)
        result = await conn.execute(
            update(schedules).where(c.id == schedule_id, expected)
            .values(next_run_at_ms=next_run_at_ms, last_run_at_ms=last_run_at_ms)
        )
        return bool(result.rowcount == 1)
