"""Executions: admission, the status CAS, the dispatcher's claim, and the queries controllers and
the API need.

Guarantees: ``submit`` decides queued-or-skipped (``core.admission``) inside the transaction that
inserts the row, with the agent row locked, so concurrent submitters never push a backlog past
``max_backlog_depth``; every status change goes through ``transition`` (a CAS, see
``transitions.py``); ``record_start`` only touches a row that is still ``running``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shepherd.core.admission import decide_admission
from shepherd.core.clock import Clock
from shepherd.core.ids import ENTROPY_BYTES, AgentName, ExecutionId, ScheduleId, format_execution_id
from shepherd.core.models import Execution, ExecutionEvent, OverlapPolicy, TransitionFields, Trigger
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.core.text import storable_text
from shepherd.core.timeouts import resolve_timeout_s
from shepherd.errors import AgentNotFound, ExecutionNotFound, ScheduleNotFound
from shepherd.stores.sql.errors import translated
from shepherd.stores.sql.rows import to_event, to_execution
from shepherd.stores.sql.tables import agents, execution_events, executions, schedules
from shepherd.stores.sql.transitions import TransitionResult, apply_transition, column_width
from shepherd.telemetry import Telemetry

S = ExecutionStatus
BOOT_ID_CHARS = column_width(executions.c.runtime_boot_id)
ACTIVE = (S.QUEUED.value, S.RUNNING.value, S.FINALIZING.value)


# ``list`` is also a method name below; this alias keeps annotations readable.
ExecutionList = list[Execution]

class ExecutionRepository:
    def __init__(
        self, engine: AsyncEngine, clock: Clock, default_timeout_s: int,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._default_timeout_s = default_timeout_s
        self._refusals = (telemetry or Telemetry()).counter(
            "shepherd_integrity_refusals",
            "Status writes refused because the execution already has a terminal event.",
        )

    # -- writes -------------------------------------------------------------------------------

    async def submit(
        self,
        *,
        agent: AgentName,
        input: str,
        trigger: Trigger,
        created_by: str,
        schedule_id: ScheduleId | None = None,
        timeout_s: int | None = None,
        retry_of: ExecutionId | None = None,
        attempt: int = 1,
    ) -> Execution:
        """A new row, ``queued`` or ``skipped`` with the reason, and its first event."""
        async with translated("submit execution"), self._engine.begin() as conn:
            return await self.submit_in(
                conn, agent=agent, input=input, trigger=trigger, created_by=created_by,
                schedule_id=schedule_id, timeout_s=timeout_s, retry_of=retry_of, attempt=attempt,
            )

    async def submit_in(
        self,
        conn: AsyncConnection,
        *,
        agent: AgentName,
        input: str,
        trigger: Trigger,
        created_by: str,
        schedule_id: ScheduleId | None,
        timeout_s: int | None,
        retry_of: ExecutionId | None,
        attempt: int,
    ) -> Execution:
        now = self._clock.now_ms()
        agent_row = (await conn.execute(
            select(agents).where(agents.c.name == agent, agents.c.deleted_at_ms.is_(None))
            .with_for_update()
        )).mappings().first()
        if agent_row is None:
            raise AgentNotFound(f"agent {agent!r} does not exist")
        overlap, schedule_timeout = await _schedule_terms(conn, schedule_id)
        admission = decide_admission(
            backlog_depth=await _count(conn, agent=agent, statuses=(S.QUEUED.value,)),
            max_backlog_depth=agent_row["max_backlog_depth"],
            overlap=overlap,
            active_for_schedule=(
                await _count(conn, schedule_id=schedule_id, statuses=ACTIVE) if schedule_id else 0
            ),
            agent_enabled=bool(agent_row["enabled"]),
        )
        resolved = resolve_timeout_s(
            timeout_s if timeout_s is not None else schedule_timeout,
            agent_row["execution_timeout_s"], self._default_timeout_s,
        )
        queued = admission.status is S.QUEUED
        execution_id = format_execution_id(now, os.urandom(ENTROPY_BYTES))
        values: dict[str, Any] = {
            "id": execution_id, "agent": agent, "agent_generation": agent_row["generation"],
            "schedule_id": schedule_id,
            "trigger": trigger.value, "input": input, "status": admission.status.value,
            "attempt": attempt, "max_attempts": 1, "retry_of": retry_of, "timeout_s": resolved,
            "queued_at_ms": now if queued else None, "completed_at_ms": None if queued else now,
            "error_class": None if queued else "skipped", "error": admission.reason,
            "created_by": created_by, "created_at_ms": now,
        }
        await conn.execute(insert(executions).values(**values))
        await conn.execute(insert(execution_events).values(
            execution_id=execution_id, from_status=None, to_status=admission.status.value,
            cause=None, actor=created_by, reason=admission.reason, at_ms=now,
        ))
        row = (await conn.execute(select(executions).where(executions.c.id == execution_id))
               ).mappings().one()
        return to_execution(row)

    async def transition(
        self,
        execution_id: str,
        to: ExecutionStatus,
        cause: Cause,
        *,
        actor: str,
        now_ms: int,
        reason: str | None = None,
        fields: TransitionFields | None = None,
    ) -> bool:
        """THE status write: a CAS plus its event; True only for the caller that won."""
        async with translated("transition execution"), self._engine.begin() as conn:
            result = await apply_transition(
                conn, execution_id, to, cause, actor=actor, now_ms=now_ms, reason=reason,
                fields=fields or TransitionFields(),
            )
        if result is TransitionResult.REFUSED:
            self._refusals.inc()
        return result is TransitionResult.WON

    async def claim_queued(self, execution_id: str, now_ms: int, actor: str) -> bool:
        """``queued -> running`` for the dispatcher, which already holds the slot."""
        return await self.transition(
            execution_id, S.RUNNING, Cause.DISPATCH, actor=actor, now_ms=now_ms,
            fields=TransitionFields(dispatched_at_ms=now_ms),
        )

    async def record_start(
        self, execution_id: str, *, pid: int | None, started_at_ms: int, boot_id: str
    ) -> bool:
        """Record the runtime's ack on a row that is still running (not a status write)."""
        async with translated("record start"), self._engine.begin() as conn:
            result = await conn.execute(
                update(executions)
                .where(executions.c.id == execution_id, executions.c.status == S.RUNNING.value)
                .values(pid=pid, started_at_ms=started_at_ms,
                        runtime_boot_id=storable_text(boot_id, BOOT_ID_CHARS))
            )
            return bool(result.rowcount == 1)

    # -- reads --------------------------------------------------------------------------------

    async def find(self, execution_id: str) -> Execution | None:
        async with translated("read execution"), self._engine.connect() as conn:
            row = (await conn.execute(select(executions).where(executions.c.id == execution_id))
                   ).mappings().first()
        return to_execution(row) if row else None

    async def get(self, execution_id: str) -> Execution:
        found = await self.find(execution_id)
        if found is None:
            raise ExecutionNotFound(f"execution {execution_id!r} does not exist")
        return found

    async def events(self, execution_id: str) -> list[ExecutionEvent]:
        query = (select(execution_events).where(execution_events.c.execution_id == execution_id)
                 .order_by(execution_events.c.id))
        return [to_event(r) for r in await self._rows(query)]

    async def list(
        self,
        *,
        status: ExecutionStatus | None = None,
        agent: AgentName | None = None,
        schedule_id: ScheduleId | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        before_id: ExecutionId | None = None,
        limit: int = 50,
        agent_generation: int | None = None,
    ) -> ExecutionList:
        """Newest first; ``before_id`` is the paging cursor (ids sort by creation time).

        ``agent`` means that agent as it is now: its current generation, unless
        ``agent_generation`` names an earlier one (an agent deleted and re-created under the same
        name does not inherit the old one's history)."""
        c = executions.c
        generation = (
            agent_generation if agent_generation is not None
            else select(agents.c.generation).where(agents.c.name == agent).scalar_subquery()
        )
        conditions = [
            cond for cond in (
                c.status == status.value if status else None,
                c.agent == agent if agent else None,
                c.agent_generation == generation if agent else None,
                c.schedule_id == schedule_id if schedule_id else None,
                c.created_at_ms >= since_ms if since_ms is not None else None,
                c.created_at_ms < until_ms if until_ms is not None else None,
                c.id < before_id if before_id else None,
            ) if cond is not None
        ]
        query = select(executions).where(and_(True, *conditions)).order_by(c.id.desc())
        return [to_execution(r) for r in await self._rows(query.limit(limit))]

    async def peek_queued(self, agent: str, limit: int) -> ExecutionList:
        """The oldest queued rows of ``agent``, in dispatch order."""
        c = executions.c
        query = (select(executions).where(c.agent == agent, c.status == S.QUEUED.value)
                 .order_by(c.queued_at_ms, c.id).limit(limit))
        return [to_execution(r) for r in await self._rows(query)]

    async def list_by_status(
        self, status: ExecutionStatus, agent: str | None = None
    ) -> ExecutionList:
        c = executions.c
        query = select(executions).where(c.status == status.value)
        if agent is not None:
            query = query.where(c.agent == agent)
        return [to_execution(r) for r in await self._rows(query.order_by(c.id))]

    async def queued_before(self, cutoff_ms: int) -> ExecutionList:
        c = executions.c
        query = select(executions).where(c.status == S.QUEUED.value, c.queued_at_ms < cutoff_ms)
        return [to_execution(r) for r in await self._rows(query.order_by(c.id))]

    async def backlog_depth(self, agent: str) -> int:
        async with translated("count backlog"), self._engine.connect() as conn:
            return await _count(conn, agent=agent, statuses=(S.QUEUED.value,))

    async def count_active_for_schedule(self, schedule_id: str) -> int:
        async with translated("count active"), self._engine.connect() as conn:
            return await _count(conn, schedule_id=schedule_id, statuses=ACTIVE)

    async def count_by_agent_and_status(self) -> dict[tuple[str, str], int]:
        c = executions.c
        query = select(c.agent, c.status, func.count()).group_by(c.agent, c.status)
        async with translated("count executions"), self._engine.connect() as conn:
            return {(a, s): n for a, s, n in (await conn.execute(query)).all()}

    async def _rows(self, query: Any) -> Sequence[Any]:
        async with translated("read executions"), self._engine.connect() as conn:
            return (await conn.execute(query)).mappings().all()


async def _count(
    conn: AsyncConnection,
    *,
    statuses: tuple[str, ...],
    agent: str | None = None,
    schedule_id: str | None = None,
) -> int:
    c = executions.c
    query = select(func.count()).select_from(executions).where(c.status.in_(statuses))
    if agent is not None:
        query = query.where(c.agent == agent)
    if schedule_id is not None:
        query = query.where(c.schedule_id == schedule_id)
    return int(await conn.scalar(query) or 0)


async def _schedule_terms(
    conn: AsyncConnection, schedule_id: ScheduleId | None
) -> tuple[OverlapPolicy | None, int | None]:
    if schedule_id is None:
        return None, None
    row = (await conn.execute(
        select(schedules.c.overlap, schedules.c.timeout_s).where(schedules.c.id == schedule_id)
    )).first()
    if row is None:
        raise ScheduleNotFound(f"schedule {schedule_id!r} does not exist")
    return OverlapPolicy(row[0]), row[1]
