"""B-family: the backlog is counted right, bounded, and drained.

Queued work sits in SQL; the dispatcher claims it into free slots. These checks compare the
backlog's own count with its rows, its depth with the agent's bound, and whether work that could
run is being picked up at all.
"""

from __future__ import annotations

from collections import Counter

from shepherd.canary.invariants.base import Tier, Violation, invariant, seconds
from shepherd.canary.snapshot import REDIS, SQL, Snapshot
from shepherd.core.signals import Severity
from shepherd.core.status import ExecutionStatus as S

# Queued work with a free slot must see the dispatcher within a minute (its interval is 0.5 s).
DRAIN_WINDOW_MS = 60_000
# A row past max_queue_age is expired by the dispatcher's next pass: a minute of slack.
EXPIRY_SLACK_MS = 60_000
# The count and the rows are two statements: a submit between them differs for one cycle.
COUNT_DWELL_S = 10.0


def _queued(s: Snapshot) -> Counter[str]:
    return Counter(r.agent for r in s.active if r.status is S.QUEUED)


@invariant("B-01", "the backlog count is the queued rows", Tier.A, Severity.CRITICAL,
           "admission counted a different backlog than the rows show: check for writes around "
           "the repository", dwell_s=COUNT_DWELL_S)
def backlog_counted(s: Snapshot) -> list[Violation]:
    if not s.available(SQL):
        return []
    rows = _queued(s)
    return [
        Violation("B-01", agent, f"agent {agent}: admission counts {s.queued_counted.get(agent, 0)}"
                  f" queued, the rows are {rows.get(agent, 0)}",
                  {"counted": s.queued_counted.get(agent, 0), "rows": rows.get(agent, 0)})
        for agent in sorted(set(rows) | set(s.queued_counted))
        if rows.get(agent, 0) != s.queued_counted.get(agent, 0)
    ]


@invariant("B-02", "queued work is picked up", Tier.B, Severity.CRITICAL,
           "the dispatcher is not running (check its last tick and the control plane's log), "
           "or slots are held by nothing (see S-01)")
def backlog_drained(s: Snapshot) -> list[Violation]:
    if not s.available(SQL, REDIS):
        return []
    last = max((t for t in (s.drain_tick_ms, s.controller_ticks_ms.get("dispatcher"))
                if t is not None), default=None)
    ready = Counter(r.agent for r in s.active if r.status is S.QUEUED
                    and (r.queued_at_ms or r.created_at_ms) < s.now_ms - DRAIN_WINDOW_MS)
    out = []
    for agent, waiting in sorted(ready.items()):
        facts = s.agents.get(agent)
        if facts is None or not facts.enabled or agent in s.fenced \
                or agent in s.circuits_refusing:
            continue
        free = facts.max_parallel - len(s.slot_members.get(agent, {}))
        if free > 0 and (last is None or s.now_ms - last > DRAIN_WINDOW_MS):
            out.append(Violation("B-02", agent, f"agent {agent}: {waiting} execution(s) queued "
                                 f"over a minute with {free} free slot(s), and no dispatcher "
                                 "pass " + ("ever" if last is None else
                                            f"for {seconds(s.now_ms - last)}"),
                                 {"queued": waiting, "free_slots": free, "last_tick_ms": last}))
    return out


@invariant("B-05", "nothing waits past its queue age", Tier.B, Severity.MINOR,
           "the dispatcher's expiry did not run: check its last tick")
def backlog_expired(s: Snapshot) -> list[Violation]:
    if s.settings is None:
        return []
    limit = s.settings.max_queue_age_s * 1000 + EXPIRY_SLACK_MS
    return [
        Violation("B-05", r.id, f"execution {r.id} on {r.agent} has been queued "
                  f"{seconds(s.now_ms - r.created_at_ms)}, past max_queue_age",
                  {"agent": r.agent, "queued_ms": s.now_ms - r.created_at_ms})
        for r in s.active if r.status is S.QUEUED and s.now_ms - r.created_at_ms > limit
    ]


@invariant("B-06", "the backlog stays within its bound", Tier.A, Severity.MAJOR,
           "admission let more in than max_backlog_depth: check for rows inserted around the "
           "repository")
def backlog_bounded(s: Snapshot) -> list[Violation]:
    out = []
    for agent, queued in sorted(_queued(s).items()):
        facts = s.agents.get(agent)
        if facts is not None and queued > facts.max_backlog_depth:
            out.append(Violation("B-06", agent, f"agent {agent} has {queued} queued, its bound "
                                 f"is {facts.max_backlog_depth}",
                                 {"queued": queued, "max_backlog_depth": facts.max_backlog_depth}))
    return out
