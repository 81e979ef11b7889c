"""The watchdog's decisions: SQL ``running`` rows judged against what each runtime reports.

Given a frozen ``Snapshot`` (taken by ``controllers.watchdog``) and ``now``, ``decide_watchdog``
returns a ``Plan``: per-row actions, the agents skipped and why, the agents to fence or unfence,
and when to look again. The table (DESIGN.md section 6, issue "watchdog reconciler"):

| agent       | runtime says                 | age                | verdict                    |
|-------------|------------------------------|--------------------|----------------------------|
| unreachable | -                            | < agent_lost_after | skip the agent, counted    |
| unreachable | -                            | >= agent_lost_after| LOST: fail or retry rows   |
| reachable   | running                      | <= timeout + slack | ok                         |
| reachable   | running                      | > timeout + slack  | TIME_OUT: terminate first  |
| reachable   | finished, row running        | >= hand-over grace | HAND_OVER to the finalizer |
| reachable   | unknown                      | < dispatch grace   | wait                       |
| reachable   | unknown                      | >= dispatch grace  | ORPHAN: fail or retry      |
| reachable   | running, row terminal/absent | -                  | STRAY: terminate it        |

Guards: an agent is declared lost only in a full cycle (one that probed the whole fleet), and
never when more than half of the probed agents (and at least two) are unreachable at once: then
the fault is the control plane's own network, and nothing at all is recovered (``systemic``).
Ages are measured on the control plane's clock from ``dispatched_at_ms``, never from instants a
runtime reported, so clock skew between hosts cannot time out or orphan a run. A finished run is
handed over only once the watchdog has seen it finished for ``handover_grace`` (the monitor
collects an exit within a second): the watchdog steps in for exits the monitor missed, and never
races it for the ones it is collecting.

Pure: no I/O, no clock. Each row is judged on its own (``core.cycle.judge_each``): a row that
cannot be judged becomes a fault and the others are still judged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from shepherd.core.cycle import Fault, judge_each
from shepherd.core.retry import Attempt, BackoffPolicy, RetryPlan, decide_retry
from shepherd.core.status import ExecutionStatus

# A full cycle this often catches what no trigger announced (a hung child, a run the runtime
# forgot without restarting); one registry GET per agent, so cheap.
DEFAULT_WATCHDOG_INTERVAL_S = 15.0
# Declared lost after a minute without an answer: longer than a runtime restart or a network
# blip, short enough that lost work is retried within minutes.
DEFAULT_AGENT_LOST_AFTER_S = 60.0
# Longer than a start request can take (connect 3 s + request 10 s), so a start still in flight
# is never taken for an orphan.
DEFAULT_DISPATCH_GRACE_S = 15.0
# The runtime enforces the timeout itself; the watchdog steps in only this long after it should
# have, so the two never race on a healthy runtime.
DEFAULT_TIMEOUT_SLACK_S = 30.0
# A healthy runtime lists its registry in milliseconds; this much silence counts as a miss, and
# bounds how long one sick agent can hold up a cycle.
DEFAULT_PROBE_TIMEOUT_S = 5.0
# The monitor collects an exit within a second of it; one still uncollected after this was missed.
DEFAULT_HANDOVER_GRACE_S = 5.0
# The fleet-wide fault threshold: more than half of the agents probed, and at least two.
SYSTEMIC_MIN_AGENTS = 2


class Reach(StrEnum):
    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"  # no answer, circuit open, or the probe timed out
    UNUSABLE = "unusable"  # answered, but not with a registry (5xx, 401, a bad body)
    NO_RUNTIME = "no_runtime"  # the agent has no URL: there is nobody to ask


class Action(StrEnum):
    OK = "ok"
    WAIT = "waiting"  # unknown within the dispatch grace, or finished within the hand-over grace
    TIME_OUT = "timed_out"
    HAND_OVER = "handed_to_finalizer"
    ORPHAN = "orphaned"
    LOSE = "agent_lost"
    STRAY = "stray_terminated"


ACTING = frozenset({Action.TIME_OUT, Action.HAND_OVER, Action.ORPHAN, Action.LOSE, Action.STRAY})


@dataclass(frozen=True, slots=True)
class RuntimeRun:
    """One entry of a runtime's registry (a pending start counts as running)."""

    execution_id: str
    finished: bool
    exit_code: int | None = None
    error_class: str | None = None
    finished_at_ms: int | None = None
    seen_finished_at_ms: int | None = None  # when the watchdog first saw it finished (its clock)


@dataclass(frozen=True, slots=True)
class AgentFacts:
    name: str
    reach: Reach
    unreachable_since_ms: int | None = None
    fenced: bool = False
    runs: Mapping[str, RuntimeRun] = field(default_factory=dict)
    boot_id: str | None = None
    problem: str | None = None  # why it is unreachable or unusable, for people
    came_back: bool = False  # it answers again after an outage


@dataclass(frozen=True, slots=True)
class RowFacts:
    """A ``running`` row as SQL had it when the snapshot was taken."""

    id: str
    agent: str
    dispatched_at_ms: int | None
    timeout_s: int
    attempt: int = 1
    max_attempts: int = 1
    retry_on_failure: bool = False
    runtime_boot_id: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    now_ms: int
    full: bool  # every watchable agent was probed (only then may an agent be declared lost)
    agents: Mapping[str, AgentFacts]
    rows: tuple[RowFacts, ...]
    # SQL status of every registry entry that is not one of ``rows`` (None: no such row).
    others: Mapping[str, ExecutionStatus | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WatchdogPolicy:
    agent_lost_after_ms: int = round(DEFAULT_AGENT_LOST_AFTER_S * 1000)
    dispatch_grace_ms: int = round(DEFAULT_DISPATCH_GRACE_S * 1000)
    timeout_slack_ms: int = round(DEFAULT_TIMEOUT_SLACK_S * 1000)
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    handover_grace_ms: int = round(DEFAULT_HANDOVER_GRACE_S * 1000)


@dataclass(frozen=True, slots=True)
class RowDecision:
    action: Action
    execution_id: str
    agent: str
    reason: str
    retry: RetryPlan | None = None
    run: RuntimeRun | None = None  # HAND_OVER: what the runtime recorded of the exit
    status: ExecutionStatus | None = None  # STRAY: the row's status in SQL (None: no row)


@dataclass(frozen=True, slots=True)
class AgentSkip:
    agent: str
    reach: Reach
    reason: str
    unreachable_since_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[RowDecision, ...] = ()
    ok: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    skipped: tuple[AgentSkip, ...] = ()
    fence: tuple[str, ...] = ()  # declared lost now: fence before failing their rows
    unfence: tuple[str, ...] = ()  # reachable again: unfence once its strays are terminated
    systemic: bool = False
    faults: tuple[Fault, ...] = ()
    next_check_ms: int | None = None  # when an unreachable agent would turn lost


Judge = Callable[[RowFacts, AgentFacts, int, WatchdogPolicy], RowDecision]


def is_systemic(snapshot: Snapshot) -> bool:
    probed = [a for a in snapshot.agents.values() if a.reach is not Reach.NO_RUNTIME]
    down = sum(1 for a in probed if a.reach is Reach.UNREACHABLE)
    return snapshot.full and down >= SYSTEMIC_MIN_AGENTS and 2 * down > len(probed)


def decide_watchdog(
    snapshot: Snapshot, policy: WatchdogPolicy, judge: Judge | None = None
) -> Plan:
    """The whole cycle's plan (see the module's table)."""
    if is_systemic(snapshot):
        skips = tuple(_skip(a, "systemic: most of the fleet is unreachable at once")
                      for a in snapshot.agents.values())
        return Plan(skipped=skips, systemic=True)
    judge_fn = judge or judge_row
    reachable = {n for n, a in snapshot.agents.items() if a.reach is Reach.REACHABLE}
    lost = {n for n, a in snapshot.agents.items() if _is_lost(a, snapshot, policy)}
    rows = [r for r in snapshot.rows if r.agent in reachable | lost]
    judged = judge_each(
        rows, lambda r: judge_fn(r, snapshot.agents[r.agent], snapshot.now_ms, policy),
        lambda r: r.id,
    )
    strays = judge_each(_registry_extras(snapshot, reachable), _judge_extra,
                        lambda e: e.execution_id)
    decisions = (*judged.decisions, *strays.decisions)
    return Plan(
        actions=tuple(d for d in decisions if d.action in ACTING),
        ok=tuple(d.execution_id for d in decisions if d.action is Action.OK),
        waiting=tuple(d.execution_id for d in decisions if d.action is Action.WAIT),
        skipped=_skips(snapshot, reachable | lost),
        fence=tuple(sorted(lost)),
        unfence=tuple(sorted(n for n in reachable if snapshot.agents[n].fenced)),
        faults=(*judged.faults, *strays.faults),
        next_check_ms=_next_check(snapshot, policy, lost),
    )


def judge_row(row: RowFacts, agent: AgentFacts, now_ms: int, policy: WatchdogPolicy) -> RowDecision:
    """One running row against its agent's registry (or its agent's loss)."""
    if agent.reach is Reach.UNREACHABLE:
        since = agent.unreachable_since_ms or now_ms
        why = (f"agent {agent.name} unreachable for {_seconds(now_ms - since)} "
               f"({agent.problem or 'no answer'}); declared lost")
        return _failing(Action.LOSE, row, "agent_lost", why, now_ms, policy)
    run = agent.runs.get(row.id)
    if run is not None and run.finished:
        seen = run.seen_finished_at_ms if run.seen_finished_at_ms is not None else now_ms
        if now_ms - seen < policy.handover_grace_ms:
            return RowDecision(Action.WAIT, row.id, row.agent, "exited; the monitor collects it")
        code = "no exit code" if run.exit_code is None else f"exit code {run.exit_code}"
        return RowDecision(Action.HAND_OVER, row.id, row.agent,
                           f"the runtime reports the child exited ({code}) but its exit was "
                           "not collected; handed to the finalizer", run=run)
    age_ms = now_ms - row.dispatched_at_ms if row.dispatched_at_ms is not None else None
    if run is not None:
        limit_ms = row.timeout_s * 1000 + policy.timeout_slack_ms
        if age_ms is None or age_ms <= limit_ms:
            return RowDecision(Action.OK, row.id, row.agent, "running within its timeout")
        why = (f"timed out after {_seconds(age_ms)}: its timeout is {row.timeout_s} s and the "
               f"runtime had not stopped it {_seconds(policy.timeout_slack_ms)} later")
        return _failing(Action.TIME_OUT, row, "timed_out", why, now_ms, policy)
    if age_ms is not None and age_ms < policy.dispatch_grace_ms:
        return RowDecision(Action.WAIT, row.id, row.agent, "not in the registry yet")
    boot = f" (boot {agent.boot_id})" if agent.boot_id else ""
    why = f"the agent has no record of it: {agent.name}'s runtime{boot} does not know it"
    if age_ms is not None:
        why += f", {_seconds(age_ms)} after dispatch"
    return _failing(Action.ORPHAN, row, "orphaned", why, now_ms, policy)


def _failing(
    action: Action, row: RowFacts, error_class: str, why: str, now_ms: int,
    policy: WatchdogPolicy,
) -> RowDecision:
    attempt = Attempt(row.id, row.attempt, row.max_attempts, row.retry_on_failure)
    retry = decide_retry(attempt, error_class, now_ms, policy.backoff)
    return RowDecision(action, row.id, row.agent, why, retry=retry)


@dataclass(frozen=True, slots=True)
class _Extra:
    """A run a reachable runtime still runs that is not one of the running rows."""

    agent: str
    execution_id: str
    status: ExecutionStatus | None  # its SQL status (None: no such row)


def _registry_extras(snapshot: Snapshot, reachable: set[str]) -> list[_Extra]:
    """Registry runs still running whose row is terminal or absent. A queued row is not a stray
    (its next start re-attaches to the run: starts are idempotent); a finalizing one has exited;
    one never looked up is judged next cycle rather than guessed."""
    running_rows = {r.id for r in snapshot.rows}
    extras = []
    for name in sorted(reachable):
        for run in snapshot.agents[name].runs.values():
            if run.finished or run.execution_id in running_rows:
                continue
            if run.execution_id not in snapshot.others:
                continue
            status = snapshot.others[run.execution_id]
            if status is None or status.is_terminal:
                extras.append(_Extra(name, run.execution_id, status))
    return extras


def _judge_extra(extra: _Extra) -> RowDecision:
    state = extra.status.value if extra.status is not None else "unknown to SQL"
    return RowDecision(Action.STRAY, extra.execution_id, extra.agent,
                       f"still running on {extra.agent} although the execution is {state}; "
                       "terminated there", status=extra.status)


def _is_lost(agent: AgentFacts, snapshot: Snapshot, policy: WatchdogPolicy) -> bool:
    if not snapshot.full or agent.reach is not Reach.UNREACHABLE:
        return False
    since = agent.unreachable_since_ms
    return since is not None and snapshot.now_ms - since >= policy.agent_lost_after_ms


def _skips(snapshot: Snapshot, judged: set[str]) -> tuple[AgentSkip, ...]:
    return tuple(_skip(a, a.problem or a.reach.value) for n, a in sorted(snapshot.agents.items())
                 if n not in judged)


def _skip(agent: AgentFacts, reason: str) -> AgentSkip:
    return AgentSkip(agent.name, agent.reach, reason, agent.unreachable_since_ms)


def _next_check(snapshot: Snapshot, policy: WatchdogPolicy, lost: set[str]) -> int | None:
    due = [
        max(snapshot.now_ms, a.unreachable_since_ms + policy.agent_lost_after_ms)
        for n, a in snapshot.agents.items()
        if a.reach is Reach.UNREACHABLE and a.unreachable_since_ms is not None and n not in lost
    ]
    return min(due) if due else None


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.0f} s" if ms >= 10_000 else f"{ms / 1000:.1f} s"
