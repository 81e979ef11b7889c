"""What one canary cycle saw: SQL, Redis, the agents' runtimes, read once, frozen.

State collection is its own module, apart from the checks, for three reasons: every check of a
cycle judges the same state (no check re-reads a store and sees a later one); the checks stay
pure functions a test builds input for directly; and each store is read once per cycle however
many checks need it.

The snapshot is NOT atomic across stores: a row may commit between the SQL read and the Redis
read. Checks that compare stores allow a grace window for that (``S-01``: 3 s), and the instant
of each read is recorded. A source that could not be read is named in ``sources_unavailable``;
checks that need it report nothing rather than a false violation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shepherd.core.status import ExecutionStatus

# Source names, as they appear in ``sources_unavailable``.
SQL = "sql"
REDIS = "redis"


def runtime_source(agent: str) -> str:
    return f"runtime:{agent}"


@dataclass(frozen=True, slots=True)
class AgentFacts:
    name: str
    enabled: bool
    url: str | None
    max_parallel: int
    max_backlog_depth: int
    deleted_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RowFacts:
    """An execution row as the checks need it (active rows, and recently finished ones)."""

    id: str
    agent: str
    status: ExecutionStatus
    timeout_s: int
    created_at_ms: int
    queued_at_ms: int | None = None
    dispatched_at_ms: int | None = None
    started_at_ms: int | None = None
    finished_at_ms: int | None = None
    completed_at_ms: int | None = None
    pid: int | None = None
    boot_id: str | None = None
    schedule_id: str | None = None
    retry_of: str | None = None
    retry_agent: str | None = None  # the agent of the row ``retry_of`` names (None: not found)
    retry_schedule: str | None = None
    input_ok: bool = True  # the stored input obeys the storage rule
    holds_credential: bool = False  # input, error or output tail carries a credential


@dataclass(frozen=True, slots=True)
class Reversal:
    """A row whose status differs from the terminal status its event log recorded."""

    id: str
    agent: str
    ended_as: ExecutionStatus
    now: ExecutionStatus


@dataclass(frozen=True, slots=True)
class ScheduleFacts:
    id: str
    agent: str
    enabled: bool
    next_run_at_ms: int | None


@dataclass(frozen=True, slots=True)
class SlotHash:
    agent: str
    execution_id: str
    ttl_s: int  # -1: no expiry, -2: gone
    timeout_s: int | None
    acquired_at_ms: int | None


@dataclass(frozen=True, slots=True)
class RuntimeFacts:
    """One runtime's answer: its registry and its health counters."""

    execution_ids: frozenset[str]
    zombies: int
    running: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    now_ms: int
    agents: Mapping[str, AgentFacts] = field(default_factory=dict)  # live and deleted
    active: tuple[RowFacts, ...] = ()  # queued, running, finalizing
    recent: tuple[RowFacts, ...] = ()  # terminal rows completed within the recent window
    reversals: tuple[Reversal, ...] = ()
    schedules: tuple[ScheduleFacts, ...] = ()
    queued_counted: Mapping[str, int] = field(default_factory=dict)  # the admission's count
    fenced: frozenset[str] = frozenset()  # agents the watchdog holds back from dispatch
    # deleted agent -> what still references it ("schedule x", "token y", "key slots:a", ...)
    references: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    slot_members: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # agent -> eid->ms
    slot_hashes: tuple[SlotHash, ...] = ()
    runtimes: Mapping[str, RuntimeFacts] = field(default_factory=dict)
    unreachable_since_ms: Mapping[str, int] = field(default_factory=dict)
    circuits_refusing: frozenset[str] = frozenset()  # agents whose breaker says they are down
    controller_ticks_ms: Mapping[str, int | None] = field(default_factory=dict)
    controller_intervals_s: Mapping[str, float] = field(default_factory=dict)
    drain_tick_ms: int | None = None
    sql_instance_id: str | None = None
    redis_instance_id: str | None = None
    sources_unavailable: tuple[str, ...] = ()
    settings: CanarySettings | None = None

    def available(self, *sources: str) -> bool:
        return not any(s in self.sources_unavailable for s in sources)

    @property
    def live_agents(self) -> list[AgentFacts]:
        return [a for a in self.agents.values() if a.deleted_at_ms is None]


@dataclass(frozen=True, slots=True)
class CanarySettings:
    """The limits the checks compare against (from ``Settings``)."""

    max_queue_age_s: int = 86_400
    finalize_grace_s: float = 300.0
    reaper_interval_s: float = 30.0
    misfire_grace_s: float = 60.0
