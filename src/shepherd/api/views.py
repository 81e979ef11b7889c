"""Response shapes of the REST API, built from the stores' records.

Instants appear twice: ``queued_at`` (ISO-8601, ``Z``) for people and ``queued_at_ms`` for
programs. Secrets never appear: a completion webhook URL shows only as
``has_completion_webhook``, a token only as its id and name (its secret is in ``TokenCreated``,
once).
"""

from __future__ import annotations

from pydantic import BaseModel

from shepherd.api.instants import to_iso
from shepherd.core.models import Agent, Execution, ExecutionEvent, OverlapPolicy, Schedule
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.services.fleet import FleetChanges, KindChanges
from shepherd.services.tokens import Role
from shepherd.stores.sql.tokens import ApiToken


class AgentView(BaseModel):
    name: str
    url: str | None
    command: list[str] | None
    max_parallel: int
    timeout_s: int
    max_backlog_depth: int
    enabled: bool
    tags: list[str]
    success_exit_codes: list[int]
    has_completion_webhook: bool
    created_at: str | None
    created_at_ms: int
    slots_in_use: int
    backlog: int
    generation: int = 1  # +1 each time the name was taken again after a delete

    @classmethod
    def of(cls, agent: Agent, *, slots_in_use: int, backlog: int) -> AgentView:
        return cls(
            name=agent.name, url=agent.url,
            command=list(agent.command) if agent.command is not None else None,
            max_parallel=agent.max_parallel_tasks, timeout_s=agent.execution_timeout_s,
            max_backlog_depth=agent.max_backlog_depth, enabled=agent.enabled,
            tags=list(agent.tags), success_exit_codes=list(agent.success_exit_codes),
            has_completion_webhook=agent.completion_webhook_url is not None,
            created_at=to_iso(agent.created_at_ms), created_at_ms=agent.created_at_ms,
            slots_in_use=slots_in_use, backlog=backlog, generation=agent.generation,
        )


class ScheduleView(BaseModel):
    id: str
    agent: str
    name: str | None
    cron: str
    timezone: str
    input: str
    timeout_s: int | None
    overlap: OverlapPolicy
    enabled: bool
    next_run_at: str | None
    next_run_at_ms: int | None
    last_run_at: str | None
    last_run_at_ms: int | None
    created_at: str | None
    created_at_ms: int

    @classmethod
    def of(cls, s: Schedule) -> ScheduleView:
        return cls(
            id=s.id, agent=s.agent, name=s.name, cron=s.cron, timezone=s.timezone, input=s.input,
            timeout_s=s.timeout_s, overlap=s.overlap, enabled=s.enabled,
            next_run_at=to_iso(s.next_run_at_ms), next_run_at_ms=s.next_run_at_ms,
            last_run_at=to_iso(s.last_run_at_ms), last_run_at_ms=s.last_run_at_ms,
            created_at=to_iso(s.created_at_ms), created_at_ms=s.created_at_ms,
        )


class ExecutionView(BaseModel):
    id: str
    agent: str
    schedule_id: str | None
    trigger: str
    input: str
    status: ExecutionStatus
    attempt: int
    max_attempts: int
    retry_of: str | None
    timeout_s: int
    exit_code: int | None
    error_class: str | None
    error: str | None
    output_tail: str | None
    runtime_boot_id: str | None
    pid: int | None
    created_by: str | None
    queued_at: str | None
    queued_at_ms: int | None
    dispatched_at: str | None
    dispatched_at_ms: int | None
    started_at: str | None
    started_at_ms: int | None
    finished_at: str | None
    finished_at_ms: int | None
    completed_at: str | None
    completed_at_ms: int | None
    created_at: str | None
    created_at_ms: int
    agent_generation: int = 1  # the incarnation of ``agent`` it ran for (see AgentView)

    @classmethod
    def of(cls, e: Execution) -> ExecutionView:
        return cls(
            id=e.id, agent=e.agent, agent_generation=e.agent_generation,
            schedule_id=e.schedule_id, trigger=e.trigger.value,
            input=e.input, status=e.status, attempt=e.attempt, max_attempts=e.max_attempts,
            retry_of=e.retry_of, timeout_s=e.timeout_s, exit_code=e.exit_code,
            error_class=e.error_class, error=e.error, output_tail=e.output_tail,
            runtime_boot_id=e.runtime_boot_id, pid=e.pid, created_by=e.created_by,
            queued_at=to_iso(e.queued_at_ms), queued_at_ms=e.queued_at_ms,
            dispatched_at=to_iso(e.dispatched_at_ms), dispatched_at_ms=e.dispatched_at_ms,
            started_at=to_iso(e.started_at_ms), started_at_ms=e.started_at_ms,
            finished_at=to_iso(e.finished_at_ms), finished_at_ms=e.finished_at_ms,
            completed_at=to_iso(e.completed_at_ms), completed_at_ms=e.completed_at_ms,
            created_at=to_iso(e.created_at_ms), created_at_ms=e.created_at_ms,
        )


class EventView(BaseModel):
    seq: int
    from_status: ExecutionStatus | None
    to_status: ExecutionStatus
    cause: Cause | None
    actor: str
    reason: str | None
    at: str | None
    at_ms: int

    @classmethod
    def of(cls, ev: ExecutionEvent) -> EventView:
        return cls(
            seq=ev.seq, from_status=ev.from_status, to_status=ev.to_status, cause=ev.cause,
            actor=ev.actor, reason=ev.reason, at=to_iso(ev.at_ms), at_ms=ev.at_ms,
        )


class ExecutionDetail(ExecutionView):
    events: list[EventView]

    @classmethod
    def with_events(cls, e: Execution, events: list[ExecutionEvent]) -> ExecutionDetail:
        return cls(**ExecutionView.of(e).model_dump(), events=[EventView.of(ev) for ev in events])


class ExecutionPage(BaseModel):
    items: list[ExecutionView]
    next_cursor: str | None


class TokenView(BaseModel):
    id: str
    name: str
    role: Role
    agent: str | None
    created_at: str | None
    created_at_ms: int
    revoked_at: str | None
    revoked_at_ms: int | None

    @classmethod
    def of(cls, t: ApiToken) -> TokenView:
        return cls(
            id=t.id, name=t.name, role=Role(t.role), agent=t.agent,
            created_at=to_iso(t.created_at_ms), created_at_ms=t.created_at_ms,
            revoked_at=to_iso(t.revoked_at_ms), revoked_at_ms=t.revoked_at_ms,
        )


class TokenCreated(TokenView):
    token: str  # the secret, shown this once


class KindChangesView(BaseModel):
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    deleted: list[str]

    @classmethod
    def of(cls, k: KindChanges) -> KindChangesView:
        return cls(created=list(k.created), updated=list(k.updated),
                   unchanged=list(k.unchanged), deleted=list(k.deleted))


class FleetChangesView(BaseModel):
    changed: bool
    agents: KindChangesView
    schedules: KindChangesView
    unmanaged: list[str]  # agents in the store that the manifest does not mention

    @classmethod
    def of(cls, c: FleetChanges) -> FleetChangesView:
        return cls(changed=c.changed, agents=KindChangesView.of(c.agents),
                   schedules=KindChangesView.of(c.schedules), unmanaged=list(c.unmanaged))


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}
