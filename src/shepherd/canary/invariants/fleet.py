"""L, R and G families: agents' lifecycles, their runtimes' health, the control plane itself.

Two ids of the catalog need what the control plane cannot see from where it runs: R-02 (a live
process left in a finished execution's group) and R-04 (an idle runtime's CPU) are questions
about another host's process table. They are registered, and report why they are not checked
here: the host sentinel (``shepherd sentinel``) watches both on each host.
"""

from __future__ import annotations

from shepherd.canary.invariants.base import FLEET, Tier, Violation, invariant, seconds
from shepherd.canary.snapshot import REDIS, SQL, Snapshot, runtime_source
from shepherd.core.signals import Severity

# An enabled agent silent this long must show it in its breaker (L-05).
SILENT_MS = 30_000
# A controller's loop may run late by a slow pass: two intervals plus this before G-02 fires.
TICK_SLACK_MS = 5_000
UNCHECKED: dict[str, str] = {
    "R-02": "needs the runtime host's process table: the host sentinel (`shepherd sentinel` on "
            "each host) alerts on processes left in a finished execution's group",
    "R-04": "needs the runtime host's CPU accounting: the host sentinel watches it per host",
}


@invariant("L-03", "a deleted agent leaves nothing behind", Tier.A, Severity.CRITICAL,
           "deletion did not cascade: remove the listed rows and keys, then check the delete path")
def deleted_agent_references(s: Snapshot) -> list[Violation]:
    return [
        Violation("L-03", agent, f"deleted agent {agent} is still referenced by "
                  f"{len(refs)} thing(s): {', '.join(refs[:5])}", {"references": list(refs)})
        for agent, refs in sorted(s.references.items()) if refs
    ]


@invariant("L-05", "a silent agent shows in its breaker", Tier.B, Severity.MAJOR,
           "the agent stopped answering but its circuit is closed: check the prober's ticks")
def silent_agents(s: Snapshot) -> list[Violation]:
    if not s.available(REDIS):
        return []
    return [
        Violation("L-05", a.name, f"agent {a.name} has not answered for "
                  f"{seconds(s.now_ms - s.unreachable_since_ms[a.name])} and its circuit still "
                  "admits calls", {"unreachable_since_ms": s.unreachable_since_ms[a.name]})
        for a in s.live_agents
        if a.enabled and a.url and a.name in s.unreachable_since_ms
        and s.now_ms - s.unreachable_since_ms[a.name] > SILENT_MS
        and a.name not in s.circuits_refusing
    ]


@invariant("R-01", "no zombie child under a runtime", Tier.A, Severity.CRITICAL,
           "the runtime does not reap its children: restart it; its exits are being lost",
           dwell_s=30.0)
def zombies(s: Snapshot) -> list[Violation]:
    return [
        Violation("R-01", agent, f"runtime of {agent} has {r.zombies} zombie child(ren)",
                  {"zombies": r.zombies})
        for agent, r in sorted(s.runtimes.items())
        if r.zombies > 0 and s.available(runtime_source(agent))
    ]


def _unchecked(_: Snapshot) -> list[Violation]:
    return []


invariant("R-02", "no process outlives its execution's group", Tier.B, Severity.CRITICAL,
          UNCHECKED["R-02"])(_unchecked)
invariant("R-04", "an idle runtime stays idle", Tier.B, Severity.MAJOR,
          UNCHECKED["R-04"])(_unchecked)


@invariant("G-02", "every controller keeps ticking", Tier.A, Severity.MAJOR,
           "a controller loop stopped or hangs: check the control plane's log for its name")
def controllers_tick(s: Snapshot) -> list[Violation]:
    if not s.available(REDIS):
        return []
    out = []
    for name, interval_s in sorted(s.controller_intervals_s.items()):
        tick = s.controller_ticks_ms.get(name)
        limit = round(2 * interval_s * 1000) + TICK_SLACK_MS
        if tick is not None and s.now_ms - tick > limit:
            out.append(Violation("G-02", name, f"controller {name} last ticked "
                                 f"{seconds(s.now_ms - tick)} ago (limit {seconds(limit)})",
                                 {"last_tick_ms": tick, "limit_ms": limit}))
    return out


@invariant("G-04", "no credential is stored in inputs, outputs or errors", Tier.A,
           Severity.CRITICAL, "a child printed or was given a credential: rotate it, then "
           "scrub the row")
def stored_credentials(s: Snapshot) -> list[Violation]:
    return [
        Violation("G-04", r.id, f"execution {r.id} on {r.agent} stores what looks like a "
                  "credential in its input, output or error", {"agent": r.agent})
        for r in (*s.active, *s.recent) if r.holds_credential
    ]


@invariant("G-06", "SQL and Redis belong to the same install", Tier.A, Severity.CRITICAL,
           "Redis or the database was swapped: a control plane must never mix two installs' "
           "stores; restore the right URL")
def same_instance(s: Snapshot) -> list[Violation]:
    # No id in Redis is a flush, which slot recovery re-mirrors (and the epoch guards): not this.
    if not s.available(SQL, REDIS) or s.redis_instance_id is None \
            or s.sql_instance_id == s.redis_instance_id:
        return []
    return [Violation("G-06", FLEET, f"SQL instance {s.sql_instance_id} but Redis says "
                      f"{s.redis_instance_id}",
                      {"sql": s.sql_instance_id, "redis": s.redis_instance_id})]
