"""The agent runtime wire protocol (DESIGN.md section 5): the bodies both sides exchange.

The runtime serves these models and the client parses them; neither side defines its own copy.
Instants are UTC epoch milliseconds. Unknown fields are ignored on read so that a newer runtime can
add fields without breaking an older control plane.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

PROTOCOL_VERSION = 1
# Long-polls are capped so a proxy or a client timeout never cuts one mid-wait.
MAX_WAIT_S = 60.0
# One start request carries at most this many executions: an agent's free slots, usually.
MAX_START_BATCH = 256
# One ack request forgets at most this many results: a page of events, with room to spare.
MAX_ACK_IDS = 1000
# A poll of /v1/events acks at most this many results on its way (``?ack=ID`` each): about
# 2.4 KB of query string. More go in a request of their own.
MAX_POLL_ACKS = 64


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RunState(StrEnum):
    PENDING = "pending"  # accepted, child not spawned yet
    RUNNING = "running"
    FINISHED = "finished"  # child exited (or never started); result retained until acked


class EventKind(StrEnum):
    STARTED = "started"
    EXITED = "exited"


class StartRequest(_Body):
    model_config = ConfigDict(extra="forbid", frozen=True)

    execution_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    input: str = Field(default="", max_length=10 * 1024 * 1024)
    timeout_s: int = Field(ge=1, le=7 * 24 * 3600)
    attempt: int = Field(default=1, ge=1)


class StartResponse(_Body):
    execution_id: str
    pid: int | None
    started_at_ms: int
    boot_id: str


class StartBatch(_Body):
    """Several starts in one request (``POST /v1/starts``), started in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    executions: list[StartRequest] = Field(min_length=1, max_length=MAX_START_BATCH)


class StartBatchResponse(_Body):
    started: list[StartResponse]


class Leftover(_Body):
    """A process the child left outside its process group that still held its output."""

    pid: int
    name: str


class ExecutionState(_Body):
    execution_id: str
    state: RunState
    attempt: int = 1
    timeout_s: int
    pid: int | None = None
    started_at_ms: int | None = None
    finished_at_ms: int | None = None
    exit_code: int | None = None
    # Set when the run failed for a reason other than its exit code: timed_out, spawn_failed,
    # terminated, runtime_restarted.
    error_class: str | None = None
    error: str | None = None
    # The child exited without reading all of its input (the control plane decides what it means).
    input_unread: bool = False
    leftovers: list[Leftover] = Field(default_factory=list)
    output_tail: str | None = None  # only on GET /v1/executions/{id}
    boot_id: str


class Registry(_Body):
    boot_id: str
    executions: list[ExecutionState]


class TerminateResult(StrEnum):
    TERMINATED = "terminated"
    ALREADY_FINISHED = "already_finished"


class TerminateResponse(_Body):
    execution_id: str
    result: TerminateResult


class RuntimeEvent(_Body):
    seq: int
    kind: EventKind
    execution_id: str
    at_ms: int
    exit_code: int | None = None
    error_class: str | None = None
    # On an ``exited`` event the runtime still holds (not acked yet): the finished run's whole
    # record with its output tail, so the control plane stores the result without asking for it.
    result: ExecutionState | None = None


class EventsPage(_Body):
    boot_id: str
    events: list[RuntimeEvent]
    # The highest seq issued so far; a client resumes with ``after=last_seq``.
    last_seq: int
    # The ids of the poll's ``ack`` this runtime forgot (or never knew); None from a runtime
    # that takes no acks on a poll, whose caller then sends them to /v1/acks.
    acked: list[str] | None = None


class AckRequest(_Body):
    execution_ids: list[str] = Field(max_length=MAX_ACK_IDS)


class AckResponse(_Body):
    acked: list[str]  # forgotten now, or already unknown to this runtime
    running: list[str]  # still running: not acked, never a silent no-op


class Health(_Body):
    status: str
    name: str
    version: str
    protocol: int = PROTOCOL_VERSION
    boot_id: str
    running: int
    zombies: int
    uptime_s: float


class ErrorBody(_Body):
    code: str
    message: str
