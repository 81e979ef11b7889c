"""Domain records as the stores hand them out: frozen dataclasses, instants in epoch ms."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shepherd.core.ids import AgentName, ExecutionId, ScheduleId
from shepherd.core.status import Cause, ExecutionStatus


class OverlapPolicy(StrEnum):
    SKIP = "skip"  # a run still in flight: record the new one as skipped
    QUEUE = "queue"  # a run still in flight: queue the new one behind it


class Trigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    API = "api"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Leftover:
    """A process a child left outside its process group, still holding its output at the exit."""

    pid: int
    name: str


@dataclass(frozen=True, slots=True)
class Agent:
    name: AgentName
    url: str | None
    command: tuple[str, ...] | None
    max_parallel_tasks: int
    execution_timeout_s: int
    max_backlog_depth: int
    enabled: bool
    created_at_ms: int
    deleted_at_ms: int | None = None
    tags: tuple[str, ...] = ()
    success_exit_codes: tuple[int, ...] = (0,)
    completion_webhook_url: str | None = None
    # A child that exits without reading all of its input fails (child_exited_early).
    require_input_read: bool = False
    max_attempts: int = 1
    retry_on_failure: bool = False
    generation: int = 1  # +1 each time a deleted agent's name is taken again


@dataclass(frozen=True, slots=True)
class Schedule:
    id: ScheduleId
    agent: AgentName
    cron: str
    timezone: str
    input: str
    timeout_s: int | None
    overlap: OverlapPolicy
    enabled: bool
    next_run_at_ms: int | None
    last_run_at_ms: int | None
    created_at_ms: int
    name: str | None = None
    max_attempts: int | None = None  # None: the agent's
    retry_on_failure: bool | None = None  # None: the agent's


@dataclass(frozen=True, slots=True)
class Execution:
    id: ExecutionId
    agent: AgentName
    schedule_id: ScheduleId | None
    trigger: Trigger
    input: str
    status: ExecutionStatus
    attempt: int
    max_attempts: int
    retry_of: ExecutionId | None
    timeout_s: int
    queued_at_ms: int | None
    dispatched_at_ms: int | None = None
    started_at_ms: int | None = None
    finished_at_ms: int | None = None
    completed_at_ms: int | None = None
    exit_code: int | None = None
    error_class: str | None = None
    error: str | None = None
    output_tail: str | None = None
    runtime_boot_id: str | None = None
    pid: int | None = None
    created_by: str | None = None
    created_at_ms: int = 0
    input_unread: bool | None = None  # None until a result is stored
    leftovers: tuple[Leftover, ...] = ()
    retry_on_failure: bool = False
    not_before_ms: int | None = None  # a queued retry waits for its backoff until then
    agent_generation: int = 1  # which incarnation of ``agent`` it was submitted to


@dataclass(frozen=True, slots=True)
class ExecutionEvent:
    execution_id: ExecutionId
    seq: int
    from_status: ExecutionStatus | None
    to_status: ExecutionStatus
    cause: Cause | None
    actor: str
    reason: str | None
    at_ms: int


@dataclass(frozen=True, slots=True)
class TransitionFields:
    """Columns a transition may set alongside ``status``; ``None`` leaves a column as it is."""

    dispatched_at_ms: int | None = None
    started_at_ms: int | None = None
    finished_at_ms: int | None = None
    completed_at_ms: int | None = None
    exit_code: int | None = None
    error_class: str | None = None
    error: str | None = None
    output_tail: str | None = None
    runtime_boot_id: str | None = None
    pid: int | None = None
    attempt: int | None = None
    input_unread: bool | None = None
    leftovers: tuple[Leftover, ...] | None = None
    # A retry or refused dispatch goes back to the backlog: forget where it ran.
    reset_dispatch: bool = False
