"""Creating, changing and firing schedules on request, keeping ``next_run_at_ms`` armed.

Guarantees: a new or re-enabled schedule, or one whose cron or time zone changed, is armed for
its next tick after ``now`` (never for a tick in the past, which the scheduler would fire at once
as a misfire). A disabled schedule keeps its row and fires nothing. ``run_now`` goes through the
same admission as any other work.
Must not: fire schedules on its own; that is the scheduler's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shepherd.core.cron import next_after_ms
from shepherd.core.ids import AgentName, ScheduleId
from shepherd.core.models import Execution, OverlapPolicy, Schedule, Trigger
from shepherd.services.executions import submit
from shepherd.stores.sql.database import Database

# A change to any of these moves the next tick.
_TIMING_FIELDS = frozenset({"cron", "timezone", "enabled"})


@dataclass(frozen=True, slots=True)
class ScheduleFields:
    agent: AgentName
    cron: str
    timezone: str = "UTC"
    input: str = ""
    timeout_s: int | None = None
    overlap: OverlapPolicy = OverlapPolicy.SKIP
    enabled: bool = True
    name: str | None = None
    max_attempts: int | None = None  # None: the agent's
    retry_on_failure: bool | None = None  # None: the agent's


def armed_at(cron: str, timezone: str, enabled: bool, now_ms: int) -> int | None:
    """The next tick for an enabled schedule; None (nothing to fire) for a disabled one."""
    return next_after_ms(cron, timezone, now_ms) if enabled else None


async def create_schedule(db: Database, fields: ScheduleFields, now_ms: int) -> Schedule:
    """A new schedule of an existing agent (``AgentNotFound`` otherwise), armed."""
    await db.agents.get(fields.agent)
    return await db.schedules.create(
        agent=fields.agent, name=fields.name, cron=fields.cron, timezone=fields.timezone,
        input=fields.input, timeout_s=fields.timeout_s, overlap=fields.overlap,
        enabled=fields.enabled,
        next_run_at_ms=armed_at(fields.cron, fields.timezone, fields.enabled, now_ms),
        now_ms=now_ms, max_attempts=fields.max_attempts, retry_on_failure=fields.retry_on_failure,
    )


async def update_schedule(
    db: Database, schedule_id: str, changes: dict[str, Any], now_ms: int
) -> Schedule:
    """Apply ``changes`` (column -> value); re-arm when the timing moved."""
    current = await db.schedules.get(ScheduleId(schedule_id))
    changes = {k: v for k, v in changes.items() if getattr(current, k) != v}
    if not changes:
        return current
    if _TIMING_FIELDS & changes.keys():
        cron = changes.get("cron", current.cron)
        timezone = changes.get("timezone", current.timezone)
        enabled = changes.get("enabled", current.enabled)
        changes["next_run_at_ms"] = armed_at(cron, timezone, enabled, now_ms)
    await db.schedules.update(current.id, **changes)
    return await db.schedules.get(current.id)


async def run_now(db: Database, schedule: Schedule, actor: str) -> Execution:
    """One run of the schedule, now, outside its cron; its next tick does not move."""
    return await submit(
        db, agent=schedule.agent, input=schedule.input, trigger=Trigger.MANUAL,
        created_by=actor, schedule_id=schedule.id, timeout_s=schedule.timeout_s,
    )
