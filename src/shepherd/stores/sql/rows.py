"""Turning SQL rows into the frozen records of ``core.models`` (and back, for agents)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.engine import RowMapping

from shepherd.core.ids import AgentName, ExecutionId, ScheduleId
from shepherd.core.models import (
    Agent,
    Execution,
    ExecutionEvent,
    Leftover,
    OverlapPolicy,
    Schedule,
    Trigger,
)
from shepherd.core.status import Cause, ExecutionStatus


def to_agent(row: RowMapping, tags: Iterable[str] = ()) -> Agent:
    command = row["command"]
    return Agent(
        name=AgentName(row["name"]),
        url=row["url"],
        command=tuple(command) if command is not None else None,
        max_parallel_tasks=row["max_parallel_tasks"],
        execution_timeout_s=row["execution_timeout_s"],
        max_backlog_depth=row["max_backlog_depth"],
        enabled=bool(row["enabled"]),
        created_at_ms=row["created_at_ms"],
        deleted_at_ms=row["deleted_at_ms"],
        tags=tuple(sorted(tags)),
        success_exit_codes=tuple(row["success_exit_codes"]),
        completion_webhook_url=row["completion_webhook_url"],
        require_input_read=bool(row["require_input_read"]),
        max_attempts=row["max_attempts"],
        retry_on_failure=bool(row["retry_on_failure"]),
        generation=row["generation"],
    )


def agent_values(fields: dict[str, Any]) -> dict[str, Any]:
    """Record fields -> column values (tuples become JSON lists)."""
    out = dict(fields)
    for key in ("command", "success_exit_codes"):
        if out.get(key) is not None:
            out[key] = list(out[key])
    return out


def to_schedule(row: RowMapping) -> Schedule:
    return Schedule(
        id=ScheduleId(row["id"]),
        agent=AgentName(row["agent"]),
        cron=row["cron"],
        timezone=row["timezone"],
        input=row["input"],
        timeout_s=row["timeout_s"],
        overlap=OverlapPolicy(row["overlap"]),
        enabled=bool(row["enabled"]),
        next_run_at_ms=row["next_run_at_ms"],
        last_run_at_ms=row["last_run_at_ms"],
        created_at_ms=row["created_at_ms"],
        name=row["name"],
        max_attempts=row["max_attempts"],
        retry_on_failure=_optional_bool(row["retry_on_failure"]),
    )


def to_execution(row: RowMapping) -> Execution:
    return Execution(
        id=ExecutionId(row["id"]),
        agent=AgentName(row["agent"]),
        schedule_id=ScheduleId(row["schedule_id"]) if row["schedule_id"] else None,
        trigger=Trigger(row["trigger"]),
        input=row["input"],
        status=ExecutionStatus(row["status"]),
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        retry_of=ExecutionId(row["retry_of"]) if row["retry_of"] else None,
        timeout_s=row["timeout_s"],
        queued_at_ms=row["queued_at_ms"],
        dispatched_at_ms=row["dispatched_at_ms"],
        started_at_ms=row["started_at_ms"],
        finished_at_ms=row["finished_at_ms"],
        completed_at_ms=row["completed_at_ms"],
        exit_code=row["exit_code"],
        error_class=row["error_class"],
        error=row["error"],
        output_tail=row["output_tail"],
        runtime_boot_id=row["runtime_boot_id"],
        pid=row["pid"],
        created_by=row["created_by"],
        created_at_ms=row["created_at_ms"],
        input_unread=None if row["input_unread"] is None else bool(row["input_unread"]),
        leftovers=tuple(Leftover(int(x["pid"]), str(x["name"])) for x in row["leftovers"] or ()),
        retry_on_failure=bool(row["retry_on_failure"]),
        not_before_ms=row["not_before_ms"],
        agent_generation=row["agent_generation"],
    )


def leftover_values(leftovers: tuple[Leftover, ...]) -> list[dict[str, object]] | None:
    """Leftovers as the JSON column holds them (NULL for none)."""
    return [{"pid": x.pid, "name": x.name} for x in leftovers] or None


def to_event(row: RowMapping) -> ExecutionEvent:
    return ExecutionEvent(
        execution_id=ExecutionId(row["execution_id"]),
        seq=row["id"],
        from_status=ExecutionStatus(row["from_status"]) if row["from_status"] else None,
        to_status=ExecutionStatus(row["to_status"]),
        cause=Cause(row["cause"]) if row["cause"] else None,
        actor=row["actor"],
        reason=row["reason"],
        at_ms=row["at_ms"],
    )


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)
