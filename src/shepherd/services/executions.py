"""Submitting, cancelling and retrying executions: the operations a person or a client asks for.

Guarantees: admission (backlog bound, overlap policy, disabled agent) is decided by the store
inside the transaction that inserts the row, so concurrent submitters never overflow a backlog.
A cancel is one compare-and-set; only the caller that won it releases the slot and asks the
runtime to stop the child, so a cancel racing a finish or another cancel has no side effect. Once
the runtime says the child is gone (terminated, or already finished) — and the row is terminal,
which the CAS made it first — the cancel acks the execution, so the runtime forgets its record
and its output log at once instead of keeping them until retention expires.
Must not: write ``status`` other than through the store's CAS, or fail a cancel because the
runtime could not be told (the slot is already free and the row already terminal).
"""

from __future__ import annotations

import logging
from typing import Protocol

from shepherd.core.ids import AgentName, ExecutionId, ScheduleId
from shepherd.core.models import Agent, Execution, Trigger
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.errors import AgentError, ExecutionNotFound, InvalidTransition, NotFound
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database

log = logging.getLogger("shepherd.services.executions")

CANCELLABLE = frozenset({ExecutionStatus.QUEUED, ExecutionStatus.RUNNING})
RETRYABLE = frozenset({ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})


class _Terminating(Protocol):
    async def terminate(self, execution_id: str) -> object:
        """Returns once the child is gone (``ExecutionNotFound`` if the runtime never had it)."""

    async def ack(self, execution_id: str) -> None: ...


class RuntimeDirectory(Protocol):
    """Where a cancel finds the runtime of an agent (``controllers.directory`` provides one)."""

    def client_for(self, agent: Agent) -> _Terminating | None: ...


async def submit(
    db: Database,
    *,
    agent: str,
    input: str,
    trigger: Trigger,
    created_by: str,
    schedule_id: str | None = None,
    timeout_s: int | None = None,
) -> Execution:
    """A new execution, ``queued`` or ``skipped`` with its reason; ``AgentNotFound`` if unknown."""
    return await db.executions.submit(
        agent=AgentName(agent), input=input, trigger=trigger, created_by=created_by,
        schedule_id=ScheduleId(schedule_id) if schedule_id else None, timeout_s=timeout_s,
    )


async def cancel(
    db: Database,
    redis: RedisHandle,
    directory: RuntimeDirectory,
    execution_id: str,
    actor: str,
    now_ms: int,
) -> Execution:
    """Cancel a queued or running execution; ``InvalidTransition`` (409) names its status if not."""
    row = await db.executions.get(ExecutionId(execution_id))
    if row.status not in CANCELLABLE:
        raise _not_cancellable(row)
    won = await db.executions.transition(
        row.id, ExecutionStatus.CANCELLED, Cause.CANCEL, actor=actor, now_ms=now_ms,
        reason=f"cancelled by {actor}",
    )
    current = await db.executions.get(row.id)
    if not won:
        if current.status is ExecutionStatus.CANCELLED:
            return current  # someone else cancelled it first: the outcome asked for holds
        if current.status in CANCELLABLE:  # the store refused: its event log says it ended
            raise InvalidTransition(
                f"execution {row.id} reads {current.status.value} but has already ended "
                "(its event log holds a terminal event); it is never moved again"
            )
        raise _not_cancellable(current)
    if row.status is ExecutionStatus.RUNNING:
        await redis.slots.release(row.agent, row.id)
        await _terminate(db, directory, row)
    return current


def _not_cancellable(row: Execution) -> InvalidTransition:
    return InvalidTransition(
        f"execution {row.id} is {row.status.value}; only queued or running executions "
        "can be cancelled"
    )


async def _terminate(db: Database, directory: RuntimeDirectory, row: Execution) -> None:
    """Ask the runtime to stop the child, then ack it. Best effort: the watchdog settles strays,
    and the monitor acks a terminal row's result on its next registry pass."""
    try:
        agent = await db.agents.get(row.agent)
        client = directory.client_for(agent)
        if client is None:
            return
        await client.terminate(row.id)
        await client.ack(row.id)  # the child is gone and the row terminal: nothing is lost
    except ExecutionNotFound:
        return  # the runtime never had it, or already forgot it: nothing to stop or ack
    except (AgentError, NotFound) as exc:
        log.warning("cancel of %s: runtime of %s not told to stop: %s", row.id, row.agent, exc)


async def retry(db: Database, execution_id: str, actor: str) -> Execution:
    """A new attempt of a failed or cancelled execution: same agent, schedule, input and retry
    policy, linked by ``retry_of`` (the store's one way of making an attempt, which the watchdog's
    and finalizer's automatic retries use too)."""
    row = await db.executions.get(ExecutionId(execution_id))
    if row.status not in RETRYABLE:
        raise InvalidTransition(
            f"execution {row.id} is {row.status.value}; only failed or cancelled executions "
            "can be retried"
        )
    return await db.executions.retry(row.id, actor=actor)
