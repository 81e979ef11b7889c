"""The reaper's tiers, row by row, and the budget invariant. Pure: no Redis, SQL or clock."""

from __future__ import annotations

import pytest

from shepherd.core.finalization import CompletionBudget
from shepherd.core.reaper import (
    Action,
    AgentFacts,
    Attach,
    LeaseFact,
    ReaperPolicy,
    RowFacts,
    Snapshot,
    Tier,
    check_budget,
    decide_reaper,
    judge_row,
    judge_watch,
)
from shepherd.core.status import ExecutionStatus as S

NOW = 10_000_000_000
GRACE_S = 300
POLICY = ReaperPolicy(finalize_grace_ms=GRACE_S * 1000)
UNSAFE = ReaperPolicy(finalize_grace_ms=GRACE_S * 1000, finalizer_liveness=False)
LIVE = LeaseFact("plane-1")
BROKEN = LeaseFact(error="WRONGTYPE")


def finalizing(eid: str = "e1", *, finished_s: float = GRACE_S, age_s: float = 400,
               lease: LeaseFact | None = None, timeout_s: int = 900, agent: str = "a") -> RowFacts:
    """A row whose child exited ``finished_s`` ago, dispatched ``age_s`` ago."""
    return RowFacts(eid, agent, S.FINALIZING, timeout_s, NOW - round(age_s * 1000),
                    NOW - round(finished_s * 1000), lease or LeaseFact())


def running(eid: str = "e1", *, age_s: float = 10, timeout_s: int = 900,
            agent: str = "a") -> RowFacts:
    return RowFacts(eid, agent, S.RUNNING, timeout_s, NOW - round(age_s * 1000))


def agent(name: str = "a", *, url: bool = True, lost: bool = False,
          monitor: LeaseFact | None = None) -> AgentFacts:
    return AgentFacts(name, url, lost, monitor or LeaseFact("plane-1"))


def snap(*rows: RowFacts, agents: tuple[AgentFacts, ...] | None = None) -> Snapshot:
    return Snapshot(NOW, rows, {a.name: a for a in agents or (agent(),)})


# -- tier 2 ------------------------------------------------------------------------------------

TIER_2 = [
    # (what, row, agent, policy, action or None)
    ("within the grace", finalizing(finished_s=GRACE_S - 0.001), agent(), POLICY, None),
    ("within the grace, even unsafe", finalizing(finished_s=1), agent(), UNSAFE, None),
    ("past the grace, live owner", finalizing(lease=LIVE), agent(), POLICY, Action.DEFER),
    ("past the grace, live owner, agent lost", finalizing(lease=LIVE), agent(lost=True), POLICY,
     Action.DEFER),
    ("past the grace, nobody", finalizing(), agent(), POLICY, Action.FINALIZE),
    ("past the grace, nobody, agent lost", finalizing(), agent(lost=True), POLICY,
     Action.GIVE_UP),
    ("past the grace, nobody, agent deleted", finalizing(), None, POLICY, Action.GIVE_UP),
    ("past the grace, nobody, no runtime URL", finalizing(), agent(url=False), POLICY,
     Action.WAIT),
    ("liveness off: a live owner is ignored", finalizing(lease=LIVE), agent(), UNSAFE,
     Action.FINALIZE),
    ("liveness off: an unreadable lease is ignored", finalizing(lease=BROKEN), agent(), UNSAFE,
     Action.FINALIZE),
    ("liveness off, agent lost", finalizing(lease=LIVE), agent(lost=True), UNSAFE,
     Action.GIVE_UP),
]


@pytest.mark.parametrize(("what", "row", "facts", "policy", "expected"), TIER_2,
                         ids=[case[0] for case in TIER_2])
def test_tier_2_judges_a_finalizing_row_by_its_grace_its_lease_and_its_agent(
    what: str, row: RowFacts, facts: AgentFacts | None, policy: ReaperPolicy,
    expected: Action | None,
) -> None:
    decision = judge_row(row, facts, NOW, policy)
    assert (decision.action if decision else None) is expected
    if decision is not None:
        assert decision.tier is Tier.FINALIZE
        assert decision.reason.startswith("tier 2: finished 300 s ago")


def test_tier_2_reasons_say_who_owns_it_and_why_a_result_is_gone() -> None:
    deferred = judge_row(finalizing(lease=LIVE), agent(), NOW, POLICY)
    assert deferred is not None and deferred.lease_owner == "plane-1"
    assert "its finalizer plane-1 is alive (holds its finalize lease): deferred" in deferred.reason
    lost = judge_row(finalizing(), agent(lost=True), NOW, POLICY)
    assert lost is not None
    assert lost.reason.endswith("the result can no longer be fetched: agent a was declared lost")
    deleted = judge_row(finalizing(), None, NOW, POLICY)
    assert deleted is not None and deleted.reason.endswith("agent a was deleted")
    unsafe = judge_row(finalizing(lease=LIVE), agent(), NOW, UNSAFE)
    assert unsafe is not None and "finalizer liveness check off" in unsafe.reason


def test_tier_2_measures_the_grace_from_the_exit_and_from_dispatch_when_no_exit_was_recorded(
) -> None:
    row = RowFacts("e1", "a", S.FINALIZING, 900, NOW - 299_999, None)
    assert judge_row(row, agent(), NOW, POLICY) is None
    row = RowFacts("e1", "a", S.FINALIZING, 900, NOW - 300_000, None)
    decision = judge_row(row, agent(), NOW, POLICY)
    assert decision is not None and decision.action is Action.FINALIZE


def test_an_unreadable_finalize_lease_is_a_fault_of_that_row_and_the_others_are_judged() -> None:
    plan = decide_reaper(snap(finalizing("bad", lease=BROKEN), finalizing("good")), POLICY)
    assert [(d.execution_id, d.action) for d in plan.rows] == [("good", Action.FINALIZE)]
    [fault] = plan.faults
    assert (fault.key, fault.stage) == ("bad", "judge")
    assert "finalize lease of bad unreadable: WRONGTYPE" in fault.error


# -- tier 3 ------------------------------------------------------------------------------------

TIER_3 = [
    # (what, row, policy, backstopped)
    ("running, one ms short of timeout + 2 graces", running(age_s=900 + 600 - 0.001), POLICY,
     False),
    ("running at timeout + 2 graces", running(age_s=1500), POLICY, True),
    ("finalizing at timeout + 2 graces, a live lease", finalizing(age_s=1500, lease=LIVE),
     POLICY, True),
    ("finalizing at timeout + 2 graces, an unreadable lease", finalizing(age_s=1500,
                                                                        lease=BROKEN), POLICY,
     True),
    ("a fixed max_running_s below the row's own limit",
     running(age_s=1000), ReaperPolicy(max_running_ms=1_000_000), True),
    ("a fixed max_running_s above the row's age",
     running(age_s=999), ReaperPolicy(max_running_ms=1_000_000), False),
    ("liveness off changes nothing", running(age_s=1500), UNSAFE, True),
]


@pytest.mark.parametrize(("what", "row", "policy", "backstopped"), TIER_3,
                         ids=[case[0] for case in TIER_3])
def test_tier_3_backstops_any_row_past_max_running_s_whatever_its_leases(
    what: str, row: RowFacts, policy: ReaperPolicy, backstopped: bool
) -> None:
    decision = judge_row(row, agent(), NOW, policy)
    if backstopped:
        assert decision is not None
        assert (decision.tier, decision.action) == (Tier.BACKSTOP, Action.BACKSTOP)
        assert decision.reason.startswith("tier 3 backstop: ")
    else:
        assert decision is None or decision.action is not Action.BACKSTOP


def test_the_backstop_reason_gives_the_age_and_how_the_limit_was_reached() -> None:
    decision = judge_row(finalizing(age_s=1500, lease=LIVE), agent(), NOW, POLICY)
    assert decision is not None
    assert decision.reason == (
        "tier 3 backstop: finalizing 1500 s after dispatch, past max_running_s (1500 s: "
        "timeout 900 s + 2 x finalize grace 300 s); its finalize lease (plane-1) ignored")


def test_a_row_past_the_backstop_is_not_also_judged_by_tier_1() -> None:
    plan = decide_reaper(snap(running("old", age_s=2000), agents=(agent(monitor=LeaseFact()),)),
                         POLICY)
    assert [d.action for d in plan.rows] == [Action.BACKSTOP]
    assert plan.attach == ()


# -- tier 1 ------------------------------------------------------------------------------------

TIER_1 = [
    # (what, agent facts, attached)
    ("a live monitor lease", agent(), False),
    ("no monitor lease", agent(monitor=LeaseFact()), True),
    ("no monitor lease, agent lost", agent(lost=True, monitor=LeaseFact()), True),
    ("no runtime URL", agent(url=False, monitor=LeaseFact()), False),
    ("agent deleted", None, False),
]


@pytest.mark.parametrize(("what", "facts", "attached"), TIER_1, ids=[c[0] for c in TIER_1])
def test_tier_1_watches_an_agent_whose_running_rows_no_monitor_watches(
    what: str, facts: AgentFacts | None, attached: bool
) -> None:
    decision = judge_watch("a", ("e1", "e2"), facts)
    if attached:
        assert decision == Attach("a", ("e1", "e2"), "tier 1: 2 running execution(s) on a and "
                                  "no monitor watches it (no live monitor lease): watching it now")
    else:
        assert decision is None


def test_tier_1_groups_running_rows_by_agent_and_an_unreadable_monitor_lease_is_a_fault(
) -> None:
    agents = (agent("a", monitor=LeaseFact()), agent("b", monitor=BROKEN), agent("c"))
    rows = (running("e1", agent="a"), running("e2", agent="b"), running("e3", agent="a"),
            running("e4", agent="c"), finalizing("e5", agent="a", finished_s=1))
    plan = decide_reaper(snap(*rows, agents=agents), POLICY)
    assert [(a.agent, a.rows) for a in plan.attach] == [("a", ("e1", "e3"))]
    assert [(f.key, f.stage) for f in plan.faults] == [("agent b", "judge")]
    assert plan.rows == ()


def test_a_quiet_fleet_has_an_empty_plan() -> None:
    plan = decide_reaper(snap(running(), finalizing(finished_s=5, lease=LIVE)), POLICY)
    assert (plan.attach, plan.rows, plan.faults) == ((), (), ())


# -- the budget invariant ------------------------------------------------------------------------

BUDGET = CompletionBudget(fetch_s=15, store_s=30, ack_s=10)


@pytest.mark.parametrize(("grace_s", "max_running_s", "broken"), [
    (300, None, []),
    (55.001, None, []),
    (55, None, ["reaper_finalize_grace_s"]),
    (10, None, ["reaper_finalize_grace_s"]),
    (300, 355.001, []),
    (300, 355, ["reaper_max_running_s"]),
    (10, 20, ["reaper_finalize_grace_s", "reaper_max_running_s"]),
])
def test_the_budget_invariant_refuses_a_grace_or_backstop_a_healthy_finalization_outlasts(
    grace_s: float, max_running_s: float | None, broken: list[str]
) -> None:
    policy = ReaperPolicy(finalize_grace_ms=round(grace_s * 1000),
                          max_running_ms=None if max_running_s is None
                          else round(max_running_s * 1000))
    found = check_budget(policy, BUDGET)
    assert [v.settings[0] for v in found] == broken


def test_a_broken_budget_says_which_numbers_disagree() -> None:
    [grace, backstop] = check_budget(ReaperPolicy(finalize_grace_ms=10_000,
                                                  max_running_ms=20_000), BUDGET)
    assert grace.message == (
        "the finalize grace (10 s) must be longer than a finalization may last, its completion "
        "budget 55 s (fetch 15 + store 30 + ack 10): a healthy finalizer would be taken for a "
        "dead one")
    assert backstop.message == (
        "max_running_s (20 s) must be more than the finalize grace (10 s) plus the completion "
        "budget 55 s (fetch 15 + store 30 + ack 10) = 65 s: the backstop would end healthy "
        "finalizations")
    assert BUDGET.largest_s == 30
