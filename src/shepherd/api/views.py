"""Response shapes of the REST API, built from the stores' records.

Instants appear twice: ``queued_at`` (ISO-8601, ``Z``) for people and ``queued_at_ms`` for
programs. Secrets never appear: a completion webhook URL shows only as
``has_completion_webhook``, a token only as its id and name (its secret is in ``TokenCreated``,
once).
"""

from __future__ import annotations

from pydantic import BaseModel

from shepherd.api.hosting import RuntimeChanges
from shepherd.api.instants import to_iso
from shepherd.core.circuit import Circuit, CircuitEvent, CircuitState, TransitionKind
from shepherd.core.models import Agent, Execution, ExecutionEvent, OverlapPolicy, Schedule
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.services.fleet import FleetChanges, KindChanges
from shepherd.services.output import ExecutionOutput, OutputSource
from shepherd.services.tokens import Role
from shepherd.stores.sql.tokens import ApiToken


class CircuitView(BaseModel):
    """An agent's circuit breaker: ``closed`` lets calls through; ``open`` and ``dormant`` refuse
    them until the next probe; ``half_open`` is a probe in flight."""

    agent: str
    state: CircuitState
    failures: int
    failed_probes: int
    opened_at: str | None
    opened_at_ms: int | None
    next_probe_at: str | None
    next_probe_at_ms: int | None
    changed_at: str | None
    changed_at_ms: int | None
    reason: str | None

    @classmethod
    def of(cls, c: Circuit) -> CircuitView:
        return cls(
            agent=c.agent, state=c.state, failures=c.failures, failed_probes=c.failed_probes,
            opened_at=to_iso(c.opened_at_ms), opened_at_ms=c.opened_at_ms,
            next_probe_at=to_iso(c.next_probe_at_ms), next_probe_at_ms=c.next_probe_at_ms,
            changed_at=to_iso(c.changed_at_ms), changed_at_ms=c.changed_at_ms, reason=c.reason,
        )


class CircuitEventView(BaseModel):
    at: str | None
    at_ms: int
    kind: TransitionKind
    from_state: CircuitState
    to_state: CircuitState
    reason: str
    by: str

    @classmethod
    def of(cls, e: CircuitEvent) -> CircuitEventView:
        return cls(at=to_iso(e.at_ms), at_ms=e.at_ms, kind=e.kind, from_state=e.from_state,
                   to_state=e.to_state, reason=e.reason, by=e.by)


class CircuitDetail(CircuitView):
    events: list[CircuitEventView]  # newest first

    @classmethod
    def with_events(cls, c: Circuit, events: list[CircuitEvent]) -> CircuitDetail:
        return cls(**CircuitView.of(c).model_dump(),
                   events=[CircuitEventView.of(e) for e in events])


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
    require_input_read: bool
    created_at: str | None
    created_at_ms: int
    slots_in_use: int
    backlog: int
    circuit: CircuitView
    max_attempts: int = 1
    retry_on_failure: bool = False
    generation: int = 1  # +1 each time the name was taken again after a delete

    @classmethod
    def of(
        cls, agent: Agent, *, slots_in_use: int, backlog: int, circuit: Circuit | None = None
    ) -> AgentView:
        return cls(
            name=agent.name, url=agent.url,
            command=list(agent.command) if agent.command is not None else None,
            max_parallel=agent.max_parallel_tasks, timeout_s=agent.execution_timeout_s,
            max_backlog_depth=agent.max_backlog_depth, enabled=agent.enabled,
            tags=list(agent.tags), success_exit_codes=list(agent.success_exit_codes),
            has_completion_webhook=agent.completion_webhook_url is not None,
            require_input_read=agent.require_input_read,
            created_at=to_iso(agent.created_at_ms), created_at_ms=agent.created_at_ms,
            slots_in_use=slots_in_use, backlog=backlog,
            circuit=CircuitView.of(circuit or Circuit(agent.name)), max_attempts=agent.max_attempts,
            retry_on_failure=agent.retry_on_failure, generation=agent.generation,
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
    max_attempts: int | None = None  # None: the agent's
    retry_on_failure: bool | None = None  # None: the agent's

    @classmethod
    def of(cls, s: Schedule) -> ScheduleView:
        return cls(
            id=s.id, agent=s.agent, name=s.name, cron=s.cron, timezone=s.timezone, input=s.input,
            timeout_s=s.timeout_s, overlap=s.overlap, enabled=s.enabled,
            next_run_at=to_iso(s.next_run_at_ms), next_run_at_ms=s.next_run_at_ms,
            last_run_at=to_iso(s.last_run_at_ms), last_run_at_ms=s.last_run_at_ms,
            created_at=to_iso(s.created_at_ms), created_at_ms=s.created_at_ms,
            max_attempts=s.max_attempts, retry_on_failure=s.retry_on_failure,
        )


class LeftoverView(BaseModel):
    pid: int
    name: str


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
    input_unread: bool | None  # null until the result is stored
    leftovers: list[LeftoverView]  # processes left outside the child's group, still holding output
    retry_on_failure: bool = False
    not_before: str | None = None  # a queued retry waits for its backoff until then
    not_before_ms: int | None = None
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
            input_unread=e.input_unread,
            leftovers=[LeftoverView(pid=x.pid, name=x.name) for x in e.leftovers],
            retry_on_failure=e.retry_on_failure, not_before=to_iso(e.not_before_ms),
            not_before_ms=e.not_before_ms,
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


class ExecutionOutputView(BaseModel):
    """What a child printed: live from its runtime while it runs, the stored tail after."""

    execution_id: str
    status: ExecutionStatus
    complete: bool  # the execution ended: this output will not change any more
    source: OutputSource
    output: str

    @classmethod
    def of(cls, o: ExecutionOutput) -> ExecutionOutputView:
        return cls(execution_id=o.execution.id, status=o.execution.status,
                   complete=o.execution.status.is_terminal, source=o.source, output=o.output)


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
    details: dict[str, list[str]] = {}  # updated name -> "field: old -> new" per changed field

    @classmethod
    def of(cls, k: KindChanges) -> KindChangesView:
        return cls(created=list(k.created), updated=list(k.updated),
                   unchanged=list(k.unchanged), deleted=list(k.deleted), details=k.details)


class RuntimeChangesView(BaseModel):
    """Local runtimes started, restarted, adopted or stopped to follow an apply (``up`` only)."""

    started: list[str]
    restarted: list[str]
    adopted: list[str]
    stopped: list[str]
    pending: dict[str, str]  # agent -> why its runtime was not (re)started yet
    failed: dict[str, str]  # agent -> why its runtime could not start

    @classmethod
    def of(cls, r: RuntimeChanges) -> RuntimeChangesView:
        return cls(started=r.started, restarted=r.restarted, adopted=r.adopted,
                   stopped=r.stopped, pending=r.pending, failed=r.failed)


class FleetChangesView(BaseModel):
    changed: bool
    dry_run: bool = False  # true: nothing was written, this is what an apply would change
    agents: KindChangesView
    schedules: KindChangesView
    unmanaged: list[str]  # agents in the store that the manifest does not mention
    runtimes: RuntimeChangesView | None = None  # null when this process starts no runtimes
    notes: list[str] = []  # what the caller should know, such as agents nothing will run here

    @classmethod
    def of(
        cls, c: FleetChanges, *, dry_run: bool = False, runtimes: RuntimeChanges | None = None,
        notes: list[str] | None = None,
    ) -> FleetChangesView:
        return cls(changed=c.changed, dry_run=dry_run, agents=KindChangesView.of(c.agents),
                   schedules=KindChangesView.of(c.schedules), unmanaged=list(c.unmanaged),
                   runtimes=RuntimeChangesView.of(runtimes) if runtimes else None,
                   notes=notes or [])


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}
