"""S-family: capacity slots in Redis match the running rows in SQL, exactly.

A slot member (``slots:{agent}``) and its hash (``slot:{agent}:{eid}``) exist for an execution
from the dispatcher's acquire until the finalizer's release, i.e. while its row is ``running`` or
``finalizing``. The stores are written one after the other, so every cross-store comparison
gives a change ``RACE_GRACE_MS`` to land in both before it counts.
"""

from __future__ import annotations

from shepherd.canary.invariants.base import Tier, Violation, invariant
from shepherd.canary.snapshot import REDIS, SQL, RowFacts, Snapshot
from shepherd.core.signals import Severity
from shepherd.core.status import ExecutionStatus as S
from shepherd.core.timeouts import slot_ttl_s

# The dispatcher's acquire-then-CAS and the finalizer's CAS-then-release take milliseconds;
# three seconds rules out every race a snapshot can catch without hiding a real leak.
RACE_GRACE_MS = 3_000
# A TTL read a moment after the snapshot's instant is a little lower: tolerated.
TTL_TOLERANCE_S = 5
HOLDING = (S.RUNNING, S.FINALIZING)
# A run cancelled while its child runs keeps its slot until the child has stopped (the runtime's
# kill grace is 5 s, then the monitor sees the exit): the capacity is still in use meanwhile.
CANCEL_GRACE_MS = 30_000


def _stopping(s: Snapshot) -> set[tuple[str, str]]:
    """(agent, id) of runs that ended so recently that their slot may rightly remain: within the
    race grace (released just after the CAS), or cancelled while their child is still stopping."""
    return {(r.agent, r.id) for r in s.recent
            if s.now_ms - (r.completed_at_ms or 0)
            <= (CANCEL_GRACE_MS if r.status is S.CANCELLED else RACE_GRACE_MS)}


def _holders(s: Snapshot) -> dict[str, dict[str, RowFacts]]:
    by_agent: dict[str, dict[str, RowFacts]] = {}
    for row in s.active:
        if row.status in HOLDING:
            by_agent.setdefault(row.agent, {})[row.id] = row
    return by_agent


def _both(s: Snapshot) -> bool:
    return s.available(SQL, REDIS)


@invariant("S-01", "slot members are exactly the running rows", Tier.A, Severity.CRITICAL,
           "a slot leaked (member without a running row) or a run holds none: maintenance "
           "reclaims leaks after its grace; a missing member means the agent can be overbooked")
def slots_match_rows(s: Snapshot) -> list[Violation]:
    if not _both(s):
        return []
    holders, stopping, out = _holders(s), _stopping(s), []
    for agent in sorted(set(holders) | set(s.slot_members)):
        members, rows = s.slot_members.get(agent, {}), holders.get(agent, {})
        phantom = sorted(e for e, at in members.items() if e not in rows
                         and (agent, e) not in stopping and s.now_ms - at > RACE_GRACE_MS)
        missing = sorted(e for e, r in rows.items() if e not in members
                         and s.now_ms - (r.dispatched_at_ms or r.created_at_ms) > RACE_GRACE_MS)
        if phantom or missing:
            out.append(Violation("S-01", agent, f"agent {agent}: {len(phantom)} slot(s) held "
                                 f"without a running row, {len(missing)} running row(s) without "
                                 "a slot", {"phantom": phantom[:20], "missing": missing[:20]}))
    return out


@invariant("S-02", "never more slots than max_parallel", Tier.A, Severity.CRITICAL,
           "the agent is overbooked: check for a Redis flush or a second control plane on "
           "another Redis")
def slots_bounded(s: Snapshot) -> list[Violation]:
    if not s.available(REDIS):
        return []
    out = []
    for agent, members in sorted(s.slot_members.items()):
        facts = s.agents.get(agent)
        if facts is not None and len(members) > facts.max_parallel:
            out.append(Violation("S-02", agent, f"agent {agent} holds {len(members)} slots, "
                                 f"max_parallel is {facts.max_parallel}",
                                 {"held": len(members), "max_parallel": facts.max_parallel}))
    return out


@invariant("S-03", "a slot outlives its execution's timeout", Tier.A, Severity.CRITICAL,
           "a slot hash without (or with too short) a TTL: it would leak or vanish under a "
           "running child; maintenance repairs hashes, check who wrote it")
def slot_ttls(s: Snapshot) -> list[Violation]:
    if not s.available(REDIS):
        return []
    out = []
    for h in s.slot_hashes:
        problem = None
        if h.ttl_s == -1:
            problem = "no_expiry"
        elif h.ttl_s >= 0 and h.timeout_s is not None and h.acquired_at_ms is not None:
            floor_ms = h.acquired_at_ms + slot_ttl_s(h.timeout_s) * 1000
            if s.now_ms + (h.ttl_s + TTL_TOLERANCE_S) * 1000 < floor_ms:
                problem = "below_floor"
        elif h.timeout_s is None:
            problem = "missing"
        if problem:
            out.append(Violation("S-03", f"{h.agent}/{h.execution_id}",
                                 f"slot of {h.execution_id} on {h.agent}: TTL {problem} "
                                 f"({h.ttl_s} s left, timeout {h.timeout_s} s)",
                                 {"agent": h.agent, "problem": problem, "ttl_s": h.ttl_s}))
    return out


@invariant("S-04", "every slot member has its hash and every hash its member", Tier.A,
           Severity.MAJOR, "a half-written slot: maintenance repairs it; check the slot scripts")
def members_match_hashes(s: Snapshot) -> list[Violation]:
    if not s.available(REDIS):
        return []
    hashes = {(h.agent, h.execution_id): h for h in s.slot_hashes}
    members = {(a, e): at for a, m in s.slot_members.items() for e, at in m.items()}
    lonely_members = sorted(k for k, at in members.items()
                            if k not in hashes and s.now_ms - at > RACE_GRACE_MS)
    lonely_hashes = sorted(k for k, h in hashes.items() if k not in members
                           and s.now_ms - (h.acquired_at_ms or 0) > RACE_GRACE_MS)
    return [
        Violation("S-04", f"{agent}/{eid}", f"slot of {eid} on {agent}: {what}",
                  {"agent": agent, "execution_id": eid})
        for what, keys in (("member without hash", lonely_members),
                           ("hash without member", lonely_hashes))
        for agent, eid in keys
    ]


@invariant("S-05", "a finished execution holds no slot", Tier.A, Severity.CRITICAL,
           "a slot was not released at finalization: maintenance reclaims it after its grace; "
           "until then the agent has one slot less")
def finished_hold_nothing(s: Snapshot) -> list[Violation]:
    if not _both(s):
        return []
    hashes = {(h.agent, h.execution_id) for h in s.slot_hashes}
    stopping, out = _stopping(s), []
    for row in s.recent:
        if (row.agent, row.id) in stopping:
            continue
        member = row.id in s.slot_members.get(row.agent, {})
        if member or (row.agent, row.id) in hashes:
            out.append(Violation("S-05", row.id, f"execution {row.id} is {row.status.value} but "
                                 f"still holds a slot on {row.agent}",
                                 {"agent": row.agent, "member": member}))
    return out
