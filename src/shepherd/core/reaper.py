"""The reaper's decisions: no execution is immortal, and none is finalized twice.

Given a frozen ``Snapshot`` (taken by ``controllers.reaper``) and ``now``, ``decide_reaper``
returns a ``Plan``. Tiers, checked in this order for each non-terminal row that has run:

| tier | row                                   | facts                          | action      |
|------|---------------------------------------|--------------------------------|-------------|
| 3    | running or finalizing, age >= limit   | anything (leases ignored)      | BACKSTOP    |
| 2    | finalizing, finished < grace ago      | -                              | (none)      |
| 2    | finalizing, finished >= grace ago     | live finalize lease            | DEFER       |
| 2    | "                                     | no lease; agent deleted / lost | GIVE_UP     |
| 2    | "                                     | no lease; agent has no URL     | WAIT        |
| 2    | "                                     | no lease; agent has a runtime  | FINALIZE    |
| 1    | running, on an agent with a runtime   | no live monitor lease          | ATTACH      |

- The age of a row is measured on the control plane's clock from its dispatch; the limit is
  ``max_running_s`` when set, else the row's timeout + 2 x the finalize grace. The backstop
  ignores every lease: a finalizer that is stuck while it heartbeats is never immortal.
- Tier 2 waits the grace from ``finished_at_ms`` (the child's exit), then defers to any live
  owner: the age of a finalization says nothing about whether its finalizer is alive, the lease
  does. With ``finalizer_liveness`` off the lease is not consulted (the unsafe behaviour of a
  reaper that judges a finalizer by its age alone; kept as a kill switch, never the default).
- A row whose lease cannot be read is a fault for that row: it is judged again next pass, and
  nothing is taken over on a guess. Queued rows are not the reaper's: the backlog expiry
  (``max_queue_age_s``) ends them.

``check_budget`` is the invariant the startup refuses to run without: the grace is longer than a
healthy finalization can last (``core.finalization.CompletionBudget``), and a fixed
``max_running_s`` leaves room for the grace and a whole finalization after it.

Pure: no I/O, no clock. Each row and agent is judged on its own (``core.cycle.judge_each``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from shepherd.core.cycle import Fault, judge_each
from shepherd.core.finalization import CompletionBudget
from shepherd.core.status import ExecutionStatus

# Often enough that a stuck finalization ends minutes after its grace; each pass is two indexed
# queries and a pipelined read of leases.
DEFAULT_REAPER_INTERVAL_S = 30.0
# Five minutes after the child's exit: longer than any healthy finalization (its steps' budgets
# total under a minute) even on a slow store, short enough that a lost one ends soon.
DEFAULT_FINALIZE_GRACE_S = 300.0
# The default backstop: the row's own timeout, then one grace for the finalizer and one more for
# the reaper's own take-over.
BACKSTOP_GRACES = 2


class Tier(IntEnum):
    WATCH = 1
    FINALIZE = 2
    BACKSTOP = 3


class Action(StrEnum):
    ATTACH = "attach"  # tier 1: start watching the agent now
    DEFER = "defer"  # tier 2: a live finalizer owns it
    FINALIZE = "finalize"  # tier 2: nobody owns it: finalize on the owner's behalf
    GIVE_UP = "give_up"  # tier 2: the result can no longer be fetched: end it failed
    WAIT = "wait"  # tier 2: no runtime to ask yet (a local agent whose runtime is starting)
    BACKSTOP = "backstop"  # tier 3


@dataclass(frozen=True, slots=True)
class LeaseFact:
    """A lease as read: its owner (None: free), or why it could not be read."""

    owner: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RowFacts:
    """A ``running`` or ``finalizing`` row as SQL had it, with its finalize lease."""

    id: str
    agent: str
    status: ExecutionStatus
    timeout_s: int
    dispatched_at_ms: int  # on the control plane's clock (the row's creation when never set)
    finished_at_ms: int | None = None
    lease: LeaseFact = field(default_factory=LeaseFact)


@dataclass(frozen=True, slots=True)
class AgentFacts:
    name: str
    has_runtime: bool  # a URL to ask
    lost: bool = False  # fenced: declared lost by the watchdog
    monitor: LeaseFact = field(default_factory=LeaseFact)  # lease:monitor:{agent}


@dataclass(frozen=True, slots=True)
class Snapshot:
    now_ms: int
    rows: tuple[RowFacts, ...]
    agents: Mapping[str, AgentFacts]  # an agent absent here was deleted


@dataclass(frozen=True, slots=True)
class ReaperPolicy:
    finalize_grace_ms: int = round(DEFAULT_FINALIZE_GRACE_S * 1000)
    max_running_ms: int | None = None  # None: each row's timeout + 2 x the grace
    finalizer_liveness: bool = True

    def limit_ms(self, timeout_s: int) -> int:
        if self.max_running_ms is not None:
            return self.max_running_ms
        return timeout_s * 1000 + BACKSTOP_GRACES * self.finalize_grace_ms


@dataclass(frozen=True, slots=True)
class RowDecision:
    tier: Tier
    action: Action
    execution_id: str
    agent: str
    status: ExecutionStatus
    reason: str
    lease_owner: str | None = None  # the finalize lease's holder when judged


@dataclass(frozen=True, slots=True)
class Attach:
    """Tier 1: watch ``agent`` now; its running rows were not watched."""

    agent: str
    rows: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    attach: tuple[Attach, ...] = ()
    rows: tuple[RowDecision, ...] = ()
    faults: tuple[Fault, ...] = ()

    def of(self, action: Action) -> tuple[RowDecision, ...]:
        return tuple(d for d in self.rows if d.action is action)


class LeaseUnknown(Exception):
    """A lease this decision depends on could not be read: the row or agent waits a pass."""


def decide_reaper(snapshot: Snapshot, policy: ReaperPolicy) -> Plan:
    """The whole pass's plan (see the module's table)."""
    now = snapshot.now_ms
    judged = judge_each(
        snapshot.rows, lambda r: judge_row(r, snapshot.agents.get(r.agent), now, policy),
        lambda r: r.id,
    )
    backstopped = {d.execution_id for d in judged.decisions if d.action is Action.BACKSTOP}
    watched: dict[str, list[str]] = {}
    for row in snapshot.rows:
        if row.status is ExecutionStatus.RUNNING and row.id not in backstopped:
            watched.setdefault(row.agent, []).append(row.id)
    attach = judge_each(
        sorted(watched.items()),
        lambda item: judge_watch(item[0], tuple(item[1]), snapshot.agents.get(item[0])),
        lambda item: f"agent {item[0]}",
    )
    return Plan(attach.decisions, judged.decisions, (*judged.faults, *attach.faults))


def judge_row(
    row: RowFacts, agent: AgentFacts | None, now_ms: int, policy: ReaperPolicy
) -> RowDecision | None:
    """Tier 3, else tier 2 for a finalizing row; None when the row is none of the reaper's."""
    age_ms, limit_ms = now_ms - row.dispatched_at_ms, policy.limit_ms(row.timeout_s)
    if age_ms >= limit_ms:
        held = f"; its finalize lease ({row.lease.owner}) ignored" if row.lease.owner else ""
        why = (f"tier 3 backstop: {row.status.value} {seconds(age_ms)} after dispatch, past "
               f"max_running_s ({_limit(policy, row.timeout_s)}){held}")
        return _decision(Tier.BACKSTOP, Action.BACKSTOP, row, why)
    if row.status is ExecutionStatus.FINALIZING:
        return _judge_finalizing(row, agent, now_ms, policy)
    return None


def _judge_finalizing(
    row: RowFacts, agent: AgentFacts | None, now_ms: int, policy: ReaperPolicy
) -> RowDecision | None:
    since = row.finished_at_ms if row.finished_at_ms is not None else row.dispatched_at_ms
    waited_ms = now_ms - since
    if waited_ms < policy.finalize_grace_ms:
        return None
    finished = f"tier 2: finished {seconds(waited_ms)} ago"
    if policy.finalizer_liveness:
        if row.lease.error is not None:
            raise LeaseUnknown(f"finalize lease of {row.id} unreadable: {row.lease.error}")
        if row.lease.owner is not None:
            return _decision(Tier.FINALIZE, Action.DEFER, row, f"{finished}; its finalizer "
                             f"{row.lease.owner} is alive (holds its finalize lease): deferred")
    gone = _result_gone(row.agent, agent)
    if gone is not None:
        return _decision(Tier.FINALIZE, Action.GIVE_UP, row, f"{finished}; the result can no "
                         f"longer be fetched: {gone}")
    if agent is not None and not agent.has_runtime:
        return _decision(Tier.FINALIZE, Action.WAIT, row, f"{finished}; agent {row.agent} has "
                         "no runtime URL to read the result from yet")
    owner = ("its finalize lease was not consulted (finalizer liveness check off)"
             if not policy.finalizer_liveness else "no finalizer holds it")
    return _decision(Tier.FINALIZE, Action.FINALIZE, row,
                     f"{finished} and {owner}: finalized on its finalizer's behalf")


def _result_gone(name: str, agent: AgentFacts | None) -> str | None:
    if agent is None:
        return f"agent {name} was deleted"
    if agent.lost:
        return f"agent {name} was declared lost"
    return None


def judge_watch(name: str, rows: tuple[str, ...], agent: AgentFacts | None) -> Attach | None:
    """Tier 1: an agent with running rows and a runtime that no monitor watches."""
    if agent is None or not agent.has_runtime:
        return None  # nobody to watch: the watchdog settles its rows
    if agent.monitor.error is not None:
        raise LeaseUnknown(f"monitor lease of {name} unreadable: {agent.monitor.error}")
    if agent.monitor.owner is not None:
        return None
    return Attach(name, rows, f"tier 1: {len(rows)} running execution(s) on {name} and no "
                  "monitor watches it (no live monitor lease): watching it now")


def _decision(tier: Tier, action: Action, row: RowFacts, reason: str) -> RowDecision:
    return RowDecision(tier, action, row.id, row.agent, row.status, reason, row.lease.owner)


def _limit(policy: ReaperPolicy, timeout_s: int) -> str:
    limit = seconds(policy.limit_ms(timeout_s))
    if policy.max_running_ms is not None:
        return limit
    return (f"{limit}: timeout {timeout_s} s + {BACKSTOP_GRACES} x finalize grace "
            f"{seconds(policy.finalize_grace_ms)}")


@dataclass(frozen=True, slots=True)
class BudgetViolation:
    """A configuration the reaper refuses to start with: the settings at fault, and why."""

    settings: tuple[str, ...]
    message: str


def check_budget(policy: ReaperPolicy, budget: CompletionBudget) -> list[BudgetViolation]:
    """Why this grace and backstop would cut a healthy finalization short (empty: they do not)."""
    grace_s = policy.finalize_grace_ms / 1000
    problems = []
    if grace_s <= budget.total_s:
        problems.append(BudgetViolation(
            ("reaper_finalize_grace_s", "finalize_fetch_budget_s", "finalize_store_budget_s",
             "finalize_ack_budget_s"),
            f"the finalize grace ({grace_s:g} s) must be longer than a finalization may last, "
            f"its completion budget {budget.describe()}: a healthy finalizer would be taken for "
            "a dead one"))
    if policy.max_running_ms is not None:
        floor_s = budget.total_s + grace_s
        if policy.max_running_ms / 1000 <= floor_s:
            problems.append(BudgetViolation(
                ("reaper_max_running_s", "reaper_finalize_grace_s"),
                f"max_running_s ({policy.max_running_ms / 1000:g} s) must be more than the "
                f"finalize grace ({grace_s:g} s) plus the completion budget "
                f"{budget.describe()} = {floor_s:g} s: the backstop would end healthy "
                "finalizations"))
    return problems


def seconds(ms: int) -> str:
    return f"{ms / 1000:.0f} s" if ms >= 10_000 else f"{ms / 1000:.1f} s"
