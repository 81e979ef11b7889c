"""E-family: every execution row is coherent on its own and moves only forward.

Pure checks over the snapshot's active rows (queued, running, finalizing), the rows finished
within the recent window, the reversals the event log exposes, the schedules, and the agents'
registries. Windows (E-01, E-05, E-09, E-10) start at the instant the row was dispatched or its
child finished, so a row never fires before the system had its chance to act.
"""

from __future__ import annotations

from itertools import pairwise

from shepherd.canary.invariants.base import Tier, Violation, invariant, seconds
from shepherd.canary.snapshot import SQL, RowFacts, Snapshot, runtime_source
from shepherd.core.signals import Severity
from shepherd.core.status import ExecutionStatus as S
from shepherd.core.timeouts import SLOT_TTL_BUFFER_S

# A running row gets this long to show its runtime's ack (E-05) and to appear in its agent's
# registry (E-09): far beyond a healthy start, short enough to catch a lost dispatch.
ACK_WINDOW_MS = 60_000
# Instants come from different processes (the runtime stamps a start, the control plane a
# cancel) and are taken just before their writes commit: a cancel decided 2 ms before the runtime
# started the child is stamped earlier than the start it raced. A second of disorder is a race.
SKEW_MS = 1_000


def _running(s: Snapshot) -> list[RowFacts]:
    return [r for r in s.active if r.status is S.RUNNING]


def _since_dispatch_ms(row: RowFacts, now_ms: int) -> int:
    return now_ms - (row.dispatched_at_ms or row.created_at_ms)


@invariant("E-01", "no execution runs forever", Tier.B, Severity.CRITICAL,
           "the watchdog should have timed it out: check `shepherd watchdog status` and the "
           "agent's runtime; `shepherd executions cancel ID` ends it by hand")
def stuck_running(s: Snapshot) -> list[Violation]:
    out = []
    for row in _running(s):
        age = _since_dispatch_ms(row, s.now_ms)
        limit = (row.timeout_s + SLOT_TTL_BUFFER_S) * 1000
        if age > limit:
            out.append(Violation("E-01", row.id, f"execution {row.id} on {row.agent} has been "
                                 f"running {seconds(age)}, past its timeout + "
                                 f"{SLOT_TTL_BUFFER_S} s ({seconds(limit)})",
                                 {"agent": row.agent, "running_ms": age, "limit_ms": limit}))
    return out


def _reversals(s: Snapshot, cancelled: bool) -> list[Violation]:
    iid = "E-08" if cancelled else "E-02"
    return [
        Violation(iid, r.id, f"execution {r.id} on {r.agent} ended {r.ended_as.value} and now "
                  f"reads {r.now.value}: {r.ended_as.value} -> {r.now.value}",
                  {"agent": r.agent, "ended_as": r.ended_as.value, "now": r.now.value})
        for r in s.reversals if (r.ended_as is S.CANCELLED) == cancelled
    ]


@invariant("E-02", "a terminal status never reverts", Tier.A, Severity.CRITICAL,
           "a status was written around the CAS repository: find the writer in the event log "
           "(`shepherd executions show ID`) and restore the terminal status")
def terminal_reverted(s: Snapshot) -> list[Violation]:
    return _reversals(s, cancelled=False)


@invariant("E-08", "cancelled stays cancelled", Tier.A, Severity.CRITICAL,
           "a cancelled execution came back: find the writer in its event log")
def cancelled_reverted(s: Snapshot) -> list[Violation]:
    return _reversals(s, cancelled=True)


@invariant("E-03", "a finished execution has coherent instants", Tier.A, Severity.MAJOR,
           "a terminal write skipped completed_at or wrote instants out of order: inspect the "
           "row and its events")
def terminal_instants(s: Snapshot) -> list[Violation]:
    out = []
    for row in s.recent:
        instants = [t for t in (row.started_at_ms, row.finished_at_ms, row.completed_at_ms)
                    if t is not None]
        backwards = any(later < earlier - SKEW_MS
                        for earlier, later in pairwise(instants))
        if row.completed_at_ms is None or backwards:
            out.append(Violation("E-03", row.id, f"execution {row.id} is {row.status.value} "
                                 "but its started <= finished <= completed instants do not hold",
                                 {"agent": row.agent, "started_at_ms": row.started_at_ms,
                                  "finished_at_ms": row.finished_at_ms,
                                  "completed_at_ms": row.completed_at_ms}))
    return out


@invariant("E-04", "queued work is well-formed", Tier.A, Severity.MAJOR,
           "a row was queued around the repository: fix or cancel it")
def queued_well_formed(s: Snapshot) -> list[Violation]:
    return [
        Violation("E-04", r.id, f"queued execution {r.id} on {r.agent} "
                  + ("has no queued_at" if r.queued_at_ms is None else "has an unstorable input"),
                  {"agent": r.agent, "queued_at_ms": r.queued_at_ms, "input_ok": r.input_ok})
        for r in s.active if r.status is S.QUEUED and (r.queued_at_ms is None or not r.input_ok)
    ]


@invariant("E-05", "a running execution has its runtime's ack", Tier.B, Severity.MAJOR,
           "the start was never acknowledged: the watchdog settles it; check the runtime's log")
def running_acked(s: Snapshot) -> list[Violation]:
    return [
        Violation("E-05", r.id, f"execution {r.id} on {r.agent} has run "
                  f"{seconds(_since_dispatch_ms(r, s.now_ms))} without its runtime's ack "
                  "(started_at, pid, boot id)",
                  {"agent": r.agent, "started_at_ms": r.started_at_ms, "pid": r.pid,
                   "boot_id": r.boot_id})
        for r in _running(s)
        if _since_dispatch_ms(r, s.now_ms) > ACK_WINDOW_MS
        and (r.started_at_ms is None or r.boot_id is None)
    ]


@invariant("E-06", "enabled schedules fire on time", Tier.B, Severity.MAJOR,
           "the scheduler is behind or stopped: check its last tick in `shepherd watchdog "
           "status` / `/metrics` and the control plane's log")
def schedules_on_time(s: Snapshot) -> list[Violation]:
    if s.settings is None:
        return []
    grace_ms = round(s.settings.misfire_grace_s * 1000)
    live = {a.name for a in s.live_agents if a.enabled}
    return [
        Violation("E-06", sch.id, f"schedule {sch.id} of {sch.agent} should have fired at "
                  f"{sch.next_run_at_ms} ({seconds(s.now_ms - (sch.next_run_at_ms or 0))} ago)"
                  if sch.next_run_at_ms is not None else
                  f"schedule {sch.id} of {sch.agent} is enabled but has no next run",
                  {"agent": sch.agent, "next_run_at_ms": sch.next_run_at_ms})
        for sch in s.schedules
        if sch.enabled and sch.agent in live
        and (sch.next_run_at_ms is None or sch.next_run_at_ms < s.now_ms - grace_ms)
    ]


@invariant("E-07", "a retry belongs to its original's agent and schedule", Tier.A, Severity.MINOR,
           "a retry row names the wrong original: inspect retry_of")
def retry_lineage(s: Snapshot) -> list[Violation]:
    return [
        Violation("E-07", r.id, f"execution {r.id} retries {r.retry_of}, which belongs to "
                  f"{r.retry_agent or 'nothing'} (schedule {r.retry_schedule}), not {r.agent} "
                  f"(schedule {r.schedule_id})",
                  {"agent": r.agent, "retry_of": r.retry_of, "retry_agent": r.retry_agent})
        for r in (*s.active, *s.recent)
        if r.retry_of is not None
        and (r.retry_agent != r.agent or r.retry_schedule != r.schedule_id)
    ]


@invariant("E-09", "every running execution is known to its runtime", Tier.B, Severity.CRITICAL,
           "the runtime lost the run (restart, crash): the watchdog should orphan it; check "
           "`shepherd watchdog status`", dwell_s=10.0)  # a run acked between the two reads
def running_registered(s: Snapshot) -> list[Violation]:
    out = []
    for row in _running(s):
        runtime = s.runtimes.get(row.agent)
        if runtime is None or not s.available(runtime_source(row.agent)):
            continue
        if _since_dispatch_ms(row, s.now_ms) > ACK_WINDOW_MS and row.id not in \
                runtime.execution_ids:
            out.append(Violation("E-09", row.id, f"execution {row.id} runs on {row.agent} for "
                                 f"{seconds(_since_dispatch_ms(row, s.now_ms))} but its runtime "
                                 "does not list it", {"agent": row.agent}))
    return out


@invariant("E-10", "no finalization hangs", Tier.B, Severity.CRITICAL,
           "the finalizer and the reaper both missed it: check `shepherd reaper status`")
def finalizing_bounded(s: Snapshot) -> list[Violation]:
    if s.settings is None or not s.available(SQL):
        return []
    limit = round((s.settings.finalize_grace_s + s.settings.reaper_interval_s) * 1000)
    out = []
    for row in s.active:
        since = row.finished_at_ms or row.dispatched_at_ms or row.created_at_ms
        if row.status is S.FINALIZING and s.now_ms - since > limit:
            out.append(Violation("E-10", row.id, f"execution {row.id} on {row.agent} has been "
                                 f"finalizing {seconds(s.now_ms - since)} (limit "
                                 f"{seconds(limit)})",
                                 {"agent": row.agent, "finalizing_ms": s.now_ms - since}))
    return out
