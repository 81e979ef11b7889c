"""The invariant catalog as pure functions: every id holds on a clean snapshot, fires on a crafted
one, respects its grace, and says what an operator needs. No store, no clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from shepherd.canary.invariants import REGISTRY, UNCHECKED, evaluate
from shepherd.canary.snapshot import (
    REDIS,
    SQL,
    AgentFacts,
    CanarySettings,
    Reversal,
    RowFacts,
    RuntimeFacts,
    ScheduleFacts,
    SlotHash,
    Snapshot,
    runtime_source,
)
from shepherd.core.status import ExecutionStatus as S

NOW = 1_000_000_000
CATALOG = {
    "E-01", "E-02", "E-03", "E-04", "E-05", "E-06", "E-07", "E-08", "E-09", "E-10",
    "S-01", "S-02", "S-03", "S-04", "S-05", "B-01", "B-02", "B-05", "B-06", "L-03", "L-05",
    "R-01", "R-02", "R-04", "G-02", "G-04", "G-06",
}
RUNNING = RowFacts("r1", "a", S.RUNNING, 600, NOW - 20_000, queued_at_ms=NOW - 20_000,
                   dispatched_at_ms=NOW - 10_000, started_at_ms=NOW - 9_990, pid=42,
                   boot_id="boot")
QUEUED = RowFacts("q1", "a", S.QUEUED, 600, NOW - 1_000, queued_at_ms=NOW - 1_000)
DONE = RowFacts("d1", "a", S.SUCCESS, 600, NOW - 60_000, queued_at_ms=NOW - 60_000,
                dispatched_at_ms=NOW - 59_000, started_at_ms=NOW - 58_000,
                finished_at_ms=NOW - 50_000, completed_at_ms=NOW - 49_000)


def clean() -> Snapshot:
    return Snapshot(
        now_ms=NOW,
        agents={"a": AgentFacts("a", True, "http://127.0.0.1:1", 2, 5)},
        active=(RUNNING, QUEUED), recent=(DONE,),
        schedules=(ScheduleFacts("s1", "a", True, NOW + 30_000),),
        queued_counted={"a": 1},
        slot_members={"a": {"r1": NOW - 10_000}},
        slot_hashes=(SlotHash("a", "r1", 890, 600, NOW - 10_000),),
        runtimes={"a": RuntimeFacts(frozenset({"r1"}), 0, 1)},
        controller_ticks_ms={"dispatcher": NOW - 400, "reaper": NOW - 20_000},
        controller_intervals_s={"dispatcher": 0.5, "reaper": 30.0},
        drain_tick_ms=NOW - 2_000, sql_instance_id="i1", redis_instance_id="i1",
        settings=CanarySettings(),
    )


def with_(**changes: object) -> Snapshot:
    return dataclasses.replace(clean(), **changes)  # type: ignore[arg-type]


def row(base: RowFacts, **changes: object) -> RowFacts:
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_the_catalog_registers_every_id_of_the_design() -> None:
    assert set(REGISTRY) == CATALOG
    assert set(UNCHECKED) == {"R-02", "R-04"}
    for inv in REGISTRY.values():
        assert inv.title and inv.runbook, inv.id


def test_a_clean_snapshot_violates_nothing() -> None:
    run = evaluate(clean())
    assert run.violations == () and run.failed == {}


OLD_RUN = row(RUNNING, dispatched_at_ms=NOW - 2_000_000, started_at_ms=NOW - 2_000_000)
CRAFTED: dict[str, Callable[[], Snapshot]] = {
    "E-01": lambda: with_(active=(OLD_RUN, QUEUED), slot_members={"a": {"r1": NOW - 2_000_000}},
                          slot_hashes=(SlotHash("a", "r1", 10, 600, NOW - 2_000_000),)),
    "E-02": lambda: with_(reversals=(Reversal("d1", "a", S.SUCCESS, S.RUNNING),)),
    "E-03": lambda: with_(recent=(row(DONE, completed_at_ms=None),)),
    "E-04": lambda: with_(active=(RUNNING, row(QUEUED, queued_at_ms=None))),
    "E-05": lambda: with_(active=(row(RUNNING, dispatched_at_ms=NOW - 120_000,
                                      started_at_ms=None, boot_id=None), QUEUED)),
    "E-06": lambda: with_(schedules=(ScheduleFacts("s1", "a", True, NOW - 3_600_000),)),
    "E-07": lambda: with_(recent=(row(DONE, retry_of="x", retry_agent="b"),)),
    "E-08": lambda: with_(reversals=(Reversal("d1", "a", S.CANCELLED, S.QUEUED),)),
    "E-09": lambda: with_(active=(row(RUNNING, dispatched_at_ms=NOW - 120_000), QUEUED),
                          runtimes={"a": RuntimeFacts(frozenset(), 0, 0)}),
    "E-10": lambda: with_(active=(row(RUNNING, status=S.FINALIZING,
                                      finished_at_ms=NOW - 400_000), QUEUED)),
    "S-01": lambda: with_(slot_members={"a": {"r1": NOW - 10_000, "ghost": NOW - 60_000}},
                          slot_hashes=(SlotHash("a", "r1", 890, 600, NOW - 10_000),
                                       SlotHash("a", "ghost", 890, 600, NOW - 60_000))),
    "S-02": lambda: with_(agents={"a": AgentFacts("a", True, "http://x", 0, 5)}),
    "S-03": lambda: with_(slot_hashes=(SlotHash("a", "r1", -1, 600, NOW - 10_000),)),
    "S-04": lambda: with_(slot_hashes=()),
    "S-05": lambda: with_(slot_members={"a": {"r1": NOW - 10_000, "d1": NOW - 59_000}},
                          slot_hashes=(SlotHash("a", "r1", 890, 600, NOW - 10_000),
                                       SlotHash("a", "d1", 890, 600, NOW - 59_000))),
    "B-01": lambda: with_(queued_counted={"a": 3}),
    "B-02": lambda: with_(active=(row(QUEUED, queued_at_ms=NOW - 120_000),),
                          slot_members={}, slot_hashes=(), drain_tick_ms=NOW - 300_000,
                          controller_ticks_ms={"dispatcher": NOW - 300_000}),
    "B-05": lambda: with_(active=(RUNNING, row(QUEUED, created_at_ms=NOW - 90_000_000))),
    "B-06": lambda: with_(agents={"a": AgentFacts("a", True, "http://x", 2, 0)}),
    "L-03": lambda: with_(references={"gone": ("schedule s9", "key shepherd:slots:gone")}),
    "L-05": lambda: with_(unreachable_since_ms={"a": NOW - 120_000}),
    "R-01": lambda: with_(runtimes={"a": RuntimeFacts(frozenset({"r1"}), 2, 1)}),
    "G-02": lambda: with_(controller_ticks_ms={"dispatcher": NOW - 60_000,
                                               "reaper": NOW - 20_000}),
    "G-04": lambda: with_(recent=(row(DONE, holds_credential=True),)),
    "G-06": lambda: with_(redis_instance_id="other"),
}


@pytest.mark.parametrize("iid", sorted(CATALOG - set(UNCHECKED)))
def test_each_checked_invariant_fires_on_a_crafted_snapshot(iid: str) -> None:
    found = REGISTRY[iid].check(CRAFTED[iid]())
    assert found, iid
    assert all(v.invariant_id == iid and v.message and v.entity for v in found)


def test_crafted_snapshots_fire_only_their_own_invariant_or_its_consequences() -> None:
    consequences = {"E-01": {"S-03"}, "S-02": {"B-02"}, "S-04": {"S-01"}, "S-05": {"S-01"},
                    "B-02": {"G-02"}}
    for iid, build in CRAFTED.items():
        fired = {v.invariant_id for v in evaluate(build()).violations}
        assert fired - {iid} <= consequences.get(iid, set()), (iid, fired)


def test_a_reversal_names_the_real_prior_status() -> None:
    [v] = REGISTRY["E-02"].check(CRAFTED["E-02"]())
    assert "success -> running" in v.message
    assert v.observed == {"agent": "a", "ended_as": "success", "now": "running"}


def test_slot_comparisons_allow_the_race_grace() -> None:
    fresh_ghost = with_(slot_members={"a": {"r1": NOW - 10_000, "new": NOW - 1_000}},
                        slot_hashes=(SlotHash("a", "r1", 890, 600, NOW - 10_000),
                                     SlotHash("a", "new", 899, 600, NOW - 1_000)))
    assert evaluate(fresh_ghost).violations == ()
    just_done = with_(recent=(row(DONE, completed_at_ms=NOW - 1_000),),
                      slot_members={"a": {"r1": NOW - 10_000, "d1": NOW - 59_000}})
    assert REGISTRY["S-05"].check(just_done) == []


def test_instants_a_race_stamped_a_few_ms_out_of_order_are_no_e03() -> None:
    raced = row(DONE, status=S.CANCELLED, started_at_ms=NOW - 49_000 + 2, finished_at_ms=None,
                completed_at_ms=NOW - 49_000)
    assert REGISTRY["E-03"].check(with_(recent=(raced,))) == []
    late = row(raced, started_at_ms=NOW - 49_000 + 5_000)
    assert REGISTRY["E-03"].check(with_(recent=(late,)))


def test_a_run_cancelled_while_its_child_stops_may_keep_its_slot_for_a_while() -> None:
    cancelled = row(DONE, status=S.CANCELLED, completed_at_ms=NOW - 10_000)
    held = with_(recent=(cancelled,),
                 slot_members={"a": {"r1": NOW - 10_000, "d1": NOW - 59_000}},
                 slot_hashes=(SlotHash("a", "r1", 890, 600, NOW - 10_000),
                              SlotHash("a", "d1", 890, 600, NOW - 59_000)))
    assert evaluate(held).violations == ()
    later = dataclasses.replace(held, now_ms=NOW + 60_000, active=(), queued_counted={},
                                controller_ticks_ms={}, drain_tick_ms=None,
                                schedules=(), slot_members={"a": {"d1": NOW - 59_000}},
                                slot_hashes=(SlotHash("a", "d1", 830, 600, NOW - 59_000),))
    assert {v.invariant_id for v in evaluate(later).violations} == {"S-01", "S-05"}


def test_a_phantom_slot_names_its_member() -> None:
    [v] = REGISTRY["S-01"].check(CRAFTED["S-01"]())
    assert v.entity == "a" and v.observed["phantom"] == ["ghost"]


@pytest.mark.parametrize(("ttl", "problem"), [(-1, "no_expiry"), (100, "below_floor")])
def test_a_slot_ttl_problem_is_named(ttl: int, problem: str) -> None:
    snapshot = with_(slot_hashes=(SlotHash("a", "r1", ttl, 600, NOW - 10_000),))
    [v] = REGISTRY["S-03"].check(snapshot)
    assert v.observed["problem"] == problem


def test_windows_of_converging_invariants_are_respected() -> None:
    young = row(RUNNING, dispatched_at_ms=NOW - 30_000, started_at_ms=None, boot_id=None)
    assert REGISTRY["E-05"].check(with_(active=(young, QUEUED))) == []
    assert REGISTRY["E-09"].check(with_(runtimes={"a": RuntimeFacts(frozenset(), 0, 0)})) == []
    assert REGISTRY["L-05"].check(with_(unreachable_since_ms={"a": NOW - 10_000})) == []


def test_a_silent_agent_whose_circuit_is_open_is_no_l05() -> None:
    snapshot = with_(unreachable_since_ms={"a": NOW - 120_000}, circuits_refusing=frozenset({"a"}))
    assert REGISTRY["L-05"].check(snapshot) == []


@pytest.mark.parametrize(
    ("source", "iids"),
    [(REDIS, ["S-01", "S-02", "S-03", "S-04", "S-05", "G-02", "G-06", "L-05"]),
     (SQL, ["S-01", "S-05", "G-06", "B-01"]),
     (runtime_source("a"), ["E-09", "R-01"])],
)
def test_an_unavailable_source_raises_no_false_violation(source: str, iids: list[str]) -> None:
    for iid in iids:
        crafted = dataclasses.replace(CRAFTED[iid](), sources_unavailable=(source,))
        assert REGISTRY[iid].check(crafted) == [], iid


def test_a_check_that_raises_is_reported_and_the_others_still_run() -> None:
    broken = with_(settings=None, schedules=(ScheduleFacts("s1", "a", True, None),),
                   redis_instance_id="other")
    original = REGISTRY["E-06"]
    REGISTRY["E-06"] = dataclasses.replace(original, check=lambda s: 1 / 0)  # type: ignore
    try:
        run = evaluate(broken)
    finally:
        REGISTRY["E-06"] = original
    assert "ZeroDivisionError" in run.failed["E-06"]
    assert {v.invariant_id for v in run.violations} == {"G-06"}
