"""Settling a child's exit: the one way a ``running`` row becomes ``finalizing``.

The monitor settles exits it reads on the event stream or in a registry pass; the watchdog
settles those a runtime reports but nobody collected. Both go through ``settle_exit``: a CAS
``running -> finalizing`` storing what the runtime recorded, and only for the caller that won,
the release of the slot (release-if-matches). The caller then wakes the finalizer.

Must not: fetch the result (the finalizer does) or decide success (``core.outcome`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

from shepherd.core.models import TransitionFields
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.core.writes import StatusWrite, WriteChain
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database


@dataclass(frozen=True, slots=True)
class Exit:
    """What a runtime recorded of a child's exit."""

    agent: str
    execution_id: str
    finished_at_ms: int | None
    exit_code: int | None
    error_class: str | None


def exit_write(exit: Exit, now_ms: int, reason: str | None = None) -> StatusWrite:
    """``running -> finalizing`` storing what the runtime recorded of the exit."""
    return StatusWrite(ExecutionStatus.FINALIZING, Cause.CHILD_EXITED, reason, TransitionFields(
        finished_at_ms=exit.finished_at_ms or now_ms, exit_code=exit.exit_code,
        error_class=exit.error_class))


async def settle_exit(
    db: Database, redis: RedisHandle, exit: Exit, *, actor: str, now_ms: int,
    reason: str | None = None,
) -> bool:
    """``running -> finalizing``; True (and the slot released) only for the winner."""
    [won] = await db.executions.write_chains(
        [WriteChain(exit.execution_id, [exit_write(exit, now_ms, reason)])], actor=actor,
        now_ms=now_ms)
    if won:
        await redis.slots.release(exit.agent, exit.execution_id)
    return won
