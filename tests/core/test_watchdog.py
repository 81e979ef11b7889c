"""The watchdog's decision table, row by row, plus its guards. Pure: no Redis, SQL or clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shepherd.core.cycle import Fault
from shepherd.core.retry import BackoffPolicy
from shepherd.core.status import ExecutionStatus as S
from shepherd.core.watchdog import (
    Action,
    AgentFacts,
    Plan,
    Reach,
    RowDecision,
    RowFacts,
    RuntimeRun,
    Snapshot,
    WatchdogPolicy,
    decide_watchdog,
    judge_row,
)

NOW = 1_000_000_000
POLICY = WatchdogPolicy(agent_lost_after_ms=60_000, dispatch_grace_ms=10_000,
                        timeout_slack_ms=30_000, backoff=BackoffPolicy(2.0, 300.0, 0.0),
                        handover_grace_ms=5_000)


def row(eid: str = "e1", agent: str = "a", age_s: float = 5, timeout_s: int = 100,
        attempt: int = 1, max_attempts: int = 1, retry_on_failure: bool = False) -> RowFacts:
    return RowFacts(eid, agent, NOW - round(age_s * 1000), timeout_s, attempt, max_attempts,
                    retry_on_failure, "boot-1")


def reachable(name: str = "a", *runs: RuntimeRun, fenced: bool = False) -> AgentFacts:
    return AgentFacts(name, Reach.REACHABLE, runs={r.execution_id: r for r in runs},
                      boot_id="boot-1", fenced=fenced)


def unreachable(name: str = "a", for_s: float = 1) -> AgentFacts:
    return AgentFacts(name, Reach.UNREACHABLE, unreachable_since_ms=NOW - round(for_s * 1000),
                      problem="connection refused")


def running(eid: str = "e1") -> RuntimeRun:
    return RuntimeRun(eid, finished=False)


def finished(eid: str = "e1", exit_code: int | None = 0, seen_s: float = 5) -> RuntimeRun:
    """A run the runtime reports finished, first seen so by the watchdog ``seen_s`` ago."""
    return RuntimeRun(eid, finished=True, exit_code=exit_code, finished_at_ms=NOW - 1,
                      seen_finished_at_ms=NOW - round(seen_s * 1000))


def snap(*agents: AgentFacts, rows: tuple[RowFacts, ...] = (), full: bool = True,
         others: dict[str, S | None] | None = None) -> Snapshot:
    return Snapshot(NOW, full, {a.name: a for a in agents}, rows, others or {})


def decide(snapshot: Snapshot) -> Plan:
    return decide_watchdog(snapshot, POLICY)


def only_action(plan: Plan) -> RowDecision:
    assert len(plan.actions) == 1, plan
    return plan.actions[0]


# -- the table, one row per line of the decision table ----------------------------------


def test_an_unreachable_agent_younger_than_the_lost_threshold_is_skipped_and_counted() -> None:
    plan = decide(snap(unreachable(for_s=59.9), rows=(row(),)))
    assert plan.actions == () and plan.fence == ()
    assert [(s.agent, s.reach) for s in plan.skipped] == [("a", Reach.UNREACHABLE)]
    assert plan.next_check_ms == NOW + 100  # when it would turn lost


def test_an_agent_unreachable_for_the_threshold_is_lost_its_rows_fail_and_it_is_fenced() -> None:
    plan = decide(snap(unreachable(for_s=60), rows=(row("e1"), row("e2"))))
    assert [(d.action, d.execution_id, d.retry) for d in plan.actions] == [
        (Action.LOSE, "e1", None), (Action.LOSE, "e2", None)]
    assert plan.fence == ("a",)
    assert "unreachable for 60 s" in plan.actions[0].reason
    assert "declared lost" in plan.actions[0].reason


def test_a_lost_agents_rows_are_queued_as_retries_when_attempts_remain() -> None:
    plan = decide(snap(unreachable(for_s=61), rows=(row(max_attempts=3),)))
    decision = only_action(plan)
    assert decision.retry is not None
    assert decision.retry.attempt == 2
    assert decision.retry.not_before_ms == NOW + 2_000


def test_a_run_the_runtime_still_runs_within_its_timeout_is_ok() -> None:
    plan = decide(snap(reachable("a", running("e1")), rows=(row(age_s=100 + 30),)))
    assert plan.actions == () and plan.ok == ("e1",)


def test_a_run_past_its_timeout_plus_the_slack_is_terminated_then_failed() -> None:
    plan = decide(snap(reachable("a", running("e1")), rows=(row(age_s=130.001),)))
    decision = only_action(plan)
    assert decision.action is Action.TIME_OUT
    assert decision.reason.startswith("timed out after 130 s")
    assert decision.retry is None  # a child's own timeout is not retried by default


def test_a_timed_out_run_is_retried_only_with_retry_on_failure() -> None:
    plan = decide(snap(reachable("a", running("e1")),
                       rows=(row(age_s=200, max_attempts=2, retry_on_failure=True),)))
    assert only_action(plan).retry is not None


def test_a_finished_run_still_running_in_sql_is_handed_to_the_finalizer_never_failed() -> None:
    run = finished("e1", exit_code=0)
    for age_s in (1, 500):  # within or far past its timeout and the grace: never failed
        decision = only_action(decide(snap(reachable("a", run), rows=(row(age_s=age_s),))))
        assert (decision.action, decision.run, decision.retry) == (Action.HAND_OVER, run, None)


@pytest.mark.parametrize("seen_s", [None, 0, 4.999])
def test_a_finished_run_is_left_to_the_monitor_within_the_hand_over_grace(
    seen_s: float | None,
) -> None:
    run = finished("e1", seen_s=seen_s or 0)
    if seen_s is None:
        run = replace(run, seen_finished_at_ms=None)  # never seen before: seen now
    plan = decide(snap(reachable("a", run), rows=(row(age_s=500),)))
    assert plan.actions == () and plan.waiting == ("e1",)


def test_a_run_unknown_to_the_runtime_within_the_dispatch_grace_waits() -> None:
    plan = decide(snap(reachable("a"), rows=(row(age_s=9.999),)))
    assert plan.actions == () and plan.waiting == ("e1",)


def test_a_run_unknown_to_the_runtime_past_the_dispatch_grace_is_an_orphan() -> None:
    decision = only_action(decide(snap(reachable("a"), rows=(row(age_s=10),))))
    assert decision.action is Action.ORPHAN
    assert "the agent has no record of it" in decision.reason
    assert decision.retry is None


def test_an_orphan_is_retried_when_attempts_remain() -> None:
    decision = only_action(decide(snap(reachable("a"), rows=(row(age_s=10, max_attempts=2),))))
    assert decision.retry is not None and decision.retry.attempt == 2


@pytest.mark.parametrize("status", [S.SUCCESS, S.FAILED, S.CANCELLED, S.SKIPPED, None])
def test_a_run_the_runtime_runs_for_a_terminal_or_absent_row_is_a_stray(
    status: S | None,
) -> None:
    plan = decide(snap(reachable("a", running("x")), others={"x": status}))
    decision = only_action(plan)
    assert (decision.action, decision.execution_id, decision.status) == (Action.STRAY, "x", status)
    assert "still running on a" in decision.reason


@pytest.mark.parametrize("status", [S.QUEUED, S.FINALIZING, S.RUNNING])
def test_a_run_whose_row_is_not_terminal_is_never_a_stray(status: S) -> None:
    assert decide(snap(reachable("a", running("x")), others={"x": status})).actions == ()


def test_a_run_never_looked_up_in_sql_is_left_for_the_next_cycle() -> None:
    assert decide(snap(reachable("a", running("x")))).actions == ()


def test_a_finished_run_of_a_terminal_row_is_not_a_stray() -> None:
    assert decide(snap(reachable("a", finished("x")), others={"x": S.SUCCESS})).actions == ()


# -- guards ---------------------------------------------------------------------------------------


def test_an_agent_is_never_declared_lost_in_a_targeted_cycle() -> None:
    plan = decide(snap(unreachable(for_s=3600), rows=(row(),), full=False))
    assert plan.actions == () and plan.fence == ()
    assert plan.next_check_ms == NOW  # look again with a full cycle at once


@pytest.mark.parametrize(("down", "up", "systemic"), [
    (2, 1, True), (2, 0, True), (3, 2, True), (2, 2, False), (1, 0, False), (1, 1, False),
])
def test_the_systemic_guard_fires_when_more_than_half_and_at_least_two_are_unreachable(
    down: int, up: int, systemic: bool
) -> None:
    agents = [unreachable(f"d{i}", for_s=3600) for i in range(down)]
    agents += [reachable(f"u{i}") for i in range(up)]
    rows = tuple(row(f"e{a.name}", a.name, age_s=3600) for a in agents)
    plan = decide(snap(*agents, rows=rows))
    assert plan.systemic is systemic
    if systemic:
        assert plan.actions == () and plan.fence == () and plan.unfence == ()
        assert {s.agent for s in plan.skipped} == {a.name for a in agents}
    else:
        assert plan.actions != ()


def test_agents_without_a_runtime_do_not_count_toward_the_systemic_guard() -> None:
    agents = [unreachable("d0", for_s=3600), reachable("u0"),
              AgentFacts("n0", Reach.NO_RUNTIME), AgentFacts("n1", Reach.NO_RUNTIME)]
    plan = decide(snap(*agents, rows=(row("e1", "d0"),)))
    assert not plan.systemic and plan.fence == ("d0",)


def test_an_agent_that_answers_without_a_registry_is_skipped_not_lost() -> None:
    sick = AgentFacts("a", Reach.UNUSABLE, problem="HTTP 500")
    plan = decide(snap(sick, rows=(row(age_s=3600),)))
    assert plan.actions == () and plan.fence == ()
    assert [(s.agent, s.reason) for s in plan.skipped] == [("a", "HTTP 500")]


def test_a_fenced_agent_that_answers_again_is_unfenced() -> None:
    plan = decide(snap(reachable("a", fenced=True)))
    assert plan.unfence == ("a",)


def test_a_fenced_agent_with_a_stray_is_unfenced_only_with_its_strays_in_the_plan() -> None:
    plan = decide(snap(reachable("a", running("old"), fenced=True), others={"old": S.FAILED}))
    assert plan.unfence == ("a",)
    assert [d.action for d in plan.actions] == [Action.STRAY]


def test_deciding_twice_on_the_same_snapshot_gives_the_same_plan() -> None:
    snapshot = snap(reachable("a", running("e1"), finished("e2")), unreachable("b", for_s=90),
                    rows=(row("e1", age_s=500, max_attempts=3), row("e2"), row("e3", age_s=30),
                          row("e4", "b")))
    assert decide(snapshot) == decide(snapshot)


def test_a_row_that_cannot_be_judged_becomes_a_fault_and_the_others_are_judged() -> None:
    def judge(r: RowFacts, agent: AgentFacts, now_ms: int, policy: WatchdogPolicy
              ) -> RowDecision:
        if r.id == "bad":
            raise ValueError("corrupt row")
        return judge_row(r, agent, now_ms, policy)

    snapshot = snap(reachable("a"), rows=(row("e1", age_s=60), row("bad", age_s=60),
                                          row("e2", age_s=60)))
    plan = decide_watchdog(snapshot, POLICY, judge)
    assert [d.execution_id for d in plan.actions] == ["e1", "e2"]
    assert plan.faults == (Fault("bad", "judge", "ValueError: corrupt row"),)


def test_a_row_without_a_dispatch_instant_unknown_to_the_runtime_is_an_orphan() -> None:
    decision = only_action(decide(snap(reachable("a"), rows=(replace(row(),
                                                                     dispatched_at_ms=None),))))
    assert decision.action is Action.ORPHAN
