"""The sentinel's pure decisions: which processes it watches, what each signal says, and what the
footprints of finished executions point at. No process table, no clock, no store."""

from __future__ import annotations

import pytest

from shepherd.core.alerting import AlertAction, AlertState, decide
from shepherd.core.footprints import (
    Escape,
    Footprint,
    Trace,
    keep_footprints,
    merge_footprints,
    trace_leftovers,
)
from shepherd.core.process_table import ProcessRow, matched_pattern
from shepherd.core.redaction import REDACTED
from shepherd.core.sentinel import (
    KIND,
    Finding,
    build_signals,
    duration,
    entity_of,
    sentinel_policy,
    source_for,
    watch,
)
from shepherd.core.signals import Severity

T0 = 1_700_000_000_000
NOTHING = Trace({}, frozenset())
SOURCE = "sentinel:host-a"


def row(pid: int = 4242, age_s: float = 7200, argv: tuple[str, ...] = ("python3", "-m",
        "pytest", "tests/"), **fields: object) -> ProcessRow:
    values: dict[str, object] = {"name": "python3", "ppid": 1, "pgid": pid, "username": "ci",
                                 "cpu_s": 1234.5, **fields}
    return ProcessRow(pid=pid, create_time_ms=T0 - int(age_s * 1000), argv=argv,
                      **values)  # type: ignore[arg-type]


def signals_for(*rows: ProcessRow, age_min_s: float = 60, trace: Trace = NOTHING):  # type: ignore[no-untyped-def]
    return build_signals(watch(rows, ["pytest"], trace), age_min_s, T0, SOURCE)


# -- matching and the signal -------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "patterns", "expected"), [
    (("python3", "-m", "pytest", "tests/"), ["pytest"], "pytest"),
    (("pytest-fake", "60"), ["coverage run", "pytest"], "pytest"),
    (("coverage", "run", "-m", "x"), ["coverage run"], "coverage run"),
    (("claude", "--model", "x", "-p"), ["pytest"], None),
    ((), ["pytest"], None),  # unreadable command line: never matched on the name alone
    (("pytest",), [""], None),
])
def test_a_pattern_is_a_plain_substring_of_the_command_line(
    argv: tuple[str, ...], patterns: list[str], expected: str | None
) -> None:
    assert matched_pattern(row(argv=argv, name="pytest"), patterns) == expected


def test_a_long_lived_matching_process_raises_one_active_signal_with_its_details() -> None:
    [built] = signals_for(row(pid=4242, age_s=7200))
    signal = built.signal
    assert built.active and built.age_s == 7200
    assert signal.key.source == SOURCE and signal.key.kind == KIND
    assert signal.key.entity == f"4242@{T0 - 7_200_000}"
    assert signal.severity is Severity.MAJOR
    assert "4242" in signal.summary and "2 h 00 min" in signal.summary
    assert "pytest" in signal.summary
    text = "\n".join(signal.forensics)
    assert "7200 s" in text and "CPU time 1234.5 s" in text and "user ci" in text
    assert "command: python3 -m pytest tests/" in text
    assert signal.runbook is not None and "kill 4242" in signal.runbook


@pytest.mark.parametrize(("age_s", "active"), [(59.999, False), (60, False), (60.001, True)])
def test_the_age_threshold_is_strict(age_s: float, active: bool) -> None:
    [built] = signals_for(row(age_s=age_s))
    assert built.active is active


def test_a_young_process_still_has_its_signal_inactive() -> None:
    [built] = signals_for(row(age_s=5))
    assert not built.active


def test_the_command_line_is_redacted_everywhere_the_signal_carries_it() -> None:
    token = "0123456789abcdef0123456789abcdef0123"
    [built] = signals_for(row(argv=("pytest", "--token", "hunter2", f"KEY={token}")))
    carried = " ".join([built.signal.summary, *built.signal.forensics])
    assert "hunter2" not in carried and token not in carried
    assert f"--token {REDACTED}" in carried


def test_a_reused_pid_is_another_entity() -> None:
    first, second = row(pid=7, age_s=100), row(pid=7, age_s=50)
    assert entity_of(first) != entity_of(second)


def test_zombies_the_excluded_and_unmatched_processes_are_not_watched() -> None:
    rows = [row(pid=1, zombie=True), row(pid=2), row(pid=3, argv=("sleep", "60"))]
    watched = watch(rows, ["pytest"], NOTHING, exclude=frozenset({2}))
    assert watched == []


def test_a_leftover_is_watched_whatever_its_command_line() -> None:
    footprint = Footprint("e1", "agent-a", pid=100, pid_create_ms=T0 - 9000,
                          started_at_ms=T0 - 9000, finished_at_ms=T0 - 5000)
    leftover = row(pid=101, age_s=8, argv=("sleep", "600"), pgid=100)
    [item] = watch([leftover], ["pytest"], trace_leftovers([leftover], {"e1": footprint}))
    assert item.finding is Finding.LEFTOVER
    [built] = build_signals([item], 60, T0, SOURCE)
    assert "left by finished execution e1" in built.signal.summary
    assert any("still in its process group" in r for r in built.signal.forensics)


def test_the_policy_alerts_once_reminds_after_the_cooldown_and_recovers_once() -> None:
    policy = sentinel_policy(1800)
    state: AlertState | None = None
    seen = []
    for at_s, active in [(0, True), (100, True), (1800, True), (1900, True), (2000, False),
                         (2100, False)]:
        action, state = decide(state, active, T0 + at_s * 1000, policy)
        seen.append(action)
    A = AlertAction
    assert seen == [A.ALERT, A.NONE, A.REALERT, A.NONE, A.RECOVERY, A.NONE]


@pytest.mark.parametrize(("host", "source"), [
    ("build-01.example.com", "sentinel:build-01.example.com"),
    ("weird host!", "sentinel:weird-host"),
    ("", "sentinel:host"),
    ("x" * 200, "sentinel:" + "x" * 90),
])
def test_the_source_names_the_host_in_the_key_alphabet(host: str, source: str) -> None:
    assert source_for(host) == source


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (59.9, "59 s"), (60, "1 min"), (3599, "59 min"), (3600, "1 h 00 min"),
    (7380, "2 h 03 min"), (86_400 * 2 + 3600 * 4 + 5, "2 d 4 h"),
])
def test_durations_read_at_a_glance(seconds: float, text: str) -> None:
    assert duration(seconds) == text


# -- footprints --------------------------------------------------------------------------------

def footprint(eid: str = "e1", pid: int = 100, finished: bool = True,
              leftovers: tuple[tuple[int, str], ...] = ()) -> Footprint:
    return Footprint(eid, "agent-a", pid=pid, pid_create_ms=T0 - 60_000,
                     started_at_ms=T0 - 60_000, finished_at_ms=T0 - 30_000 if finished else None,
                     leftovers=leftovers)


def proc(pid: int, started_s_ago: float, pgid: int | None = None, name: str = "sleep",
         zombie: bool = False) -> ProcessRow:
    return ProcessRow(pid=pid, create_time_ms=T0 - int(started_s_ago * 1000), name=name,
                      argv=(name,), pgid=pgid if pgid is not None else pid, zombie=zombie)


def test_a_record_that_vanished_unfinished_was_acked_and_counts_as_finished_now() -> None:
    running = footprint(finished=False)
    merged = merge_footprints({"e1": running}, [], T0)
    assert merged["e1"].finished_at_ms == T0
    assert merge_footprints({"e1": running}, [running], T0)["e1"].finished_at_ms is None


def test_a_record_read_now_wins_over_what_was_remembered() -> None:
    remembered = footprint(finished=False)
    done = footprint(leftovers=((5, "sleep"),))
    assert merge_footprints({"e1": remembered}, [done], T0)["e1"] == done


def test_a_group_member_of_a_finished_execution_is_left_behind() -> None:
    trace = trace_leftovers([proc(101, 50, pgid=100)], {"e1": footprint()})
    assert trace.left[101].escape is Escape.GROUP
    assert trace.live == {"e1"}


def test_nothing_is_left_behind_while_the_child_still_runs() -> None:
    child = proc(100, 60)
    member = proc(101, 50, pgid=100)
    trace = trace_leftovers([child, member], {"e1": footprint(finished=False)})
    assert trace.left == {} and trace.live == {"e1"}


def test_a_running_record_whose_child_is_gone_counts_as_finished() -> None:
    member = proc(101, 50, pgid=100)
    trace = trace_leftovers([member], {"e1": footprint(finished=False)})
    assert 101 in trace.left


def test_a_group_id_reused_by_another_process_is_not_the_executions() -> None:
    other_leader = proc(100, 5)  # same pid, started long after the child
    member = proc(101, 4, pgid=100)
    assert trace_leftovers([other_leader, member], {"e1": footprint()}).left == {}


def test_a_process_older_than_the_execution_is_not_its_leftover() -> None:
    assert trace_leftovers([proc(101, 3600, pgid=100)], {"e1": footprint()}).left == {}


@pytest.mark.parametrize(("seen", "found"), [
    (proc(7, 40, name="sleep"), True),
    (proc(7, 40, name="python3"), False),  # another program on that pid now
    (proc(7, 10, name="sleep"), False),  # started after the run finished: a reused pid
    (proc(7, 40, name="sleep", zombie=True), False),
    (proc(7, 40, name="averylongprocessname-full"), False),
])
def test_an_escaped_leftover_is_the_reported_pid_with_its_name_inside_the_run(
    seen: ProcessRow, found: bool
) -> None:
    trace = trace_leftovers([seen], {"e1": footprint(leftovers=((7, "sleep"),))})
    assert (7 in trace.left) is found


def test_a_truncated_kernel_name_matches_the_full_name() -> None:
    seen = proc(7, 40, name="averylongprocessname-full")
    trace = trace_leftovers([seen], {"e1": footprint(leftovers=((7, "averylongproces"),))})
    assert trace.left[7].escape is Escape.ESCAPED


def test_footprints_are_kept_while_on_record_or_alive_and_capped_oldest_first() -> None:
    prints = {f"e{i}": footprint(f"e{i}") for i in range(4)}
    kept = keep_footprints(prints, live=frozenset({"e1"}), recorded=frozenset({"e2"}))
    assert set(kept) == {"e1", "e2"}
    old = {"old": Footprint("old", "a", 1, None, 0, finished_at_ms=1),
           "new": Footprint("new", "a", 2, None, 0, finished_at_ms=2)}
    assert set(keep_footprints(old, frozenset(old), frozenset(), cap=1)) == {"new"}
