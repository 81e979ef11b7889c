"""Pure decisions of the controllers: cron firing, admission, outcome, slot reclaim."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shepherd.core.admission import decide_admission
from shepherd.core.cron import decide_firing, next_after_ms
from shepherd.core.models import OverlapPolicy
from shepherd.core.outcome import decide_outcome
from shepherd.core.reclaim import (
    RunningRow,
    SlotHolder,
    SlotRestore,
    decide_reclaim,
    decide_restore,
)
from shepherd.core.status import ExecutionStatus as S


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_next_tick_is_strictly_after() -> None:
    assert next_after_ms("*/5 * * * *", "UTC", ms("2026-01-01T10:00:00")) == ms(
        "2026-01-01T10:05:00"
    )


def test_cron_is_read_in_the_schedules_time_zone() -> None:
    # 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer.
    assert next_after_ms("0 9 * * *", "Europe/Paris", ms("2026-01-10T00:00:00")) == ms(
        "2026-01-10T08:00:00"
    )
    assert next_after_ms("0 9 * * *", "Europe/Paris", ms("2026-07-10T00:00:00")) == ms(
        "2026-07-10T07:00:00"
    )


def test_a_new_schedule_is_armed_not_fired() -> None:
    firing = decide_firing("* * * * *", "UTC", None, ms("2026-01-01T10:00:30"))
    assert not firing.fire
    assert firing.next_run_at_ms == ms("2026-01-01T10:01:00")


def test_a_schedule_not_yet_due_does_nothing() -> None:
    firing = decide_firing("* * * * *", "UTC", ms("2026-01-01T10:01:00"), ms("2026-01-01T10:00:59"))
    assert not firing.fire and firing.next_run_at_ms == ms("2026-01-01T10:01:00")


def test_a_due_schedule_fires_once_and_moves_past_now() -> None:
    firing = decide_firing("* * * * *", "UTC", ms("2026-01-01T10:01:00"), ms("2026-01-01T10:01:00"))
    assert firing.fire and firing.missed == 0
    assert firing.scheduled_for_ms == ms("2026-01-01T10:01:00")
    assert firing.next_run_at_ms == ms("2026-01-01T10:02:00")


def test_misfires_after_downtime_fire_once_not_n_times() -> None:
    firing = decide_firing("* * * * *", "UTC", ms("2026-01-01T10:01:00"), ms("2026-01-01T12:30:10"))
    assert firing.fire
    assert firing.missed == 149
    assert firing.scheduled_for_ms == ms("2026-01-01T12:30:00")
    assert firing.next_run_at_ms == ms("2026-01-01T12:31:00")


@pytest.mark.parametrize(
    ("depth", "overlap", "active", "enabled", "status", "reason"),
    [
        (0, None, 0, True, S.QUEUED, None),
        (49, None, 0, True, S.QUEUED, None),
        (50, None, 0, True, S.SKIPPED, "backlog full: 50 queued, max_backlog_depth is 50"),
        (0, OverlapPolicy.SKIP, 1, True, S.SKIPPED, "overlap policy 'skip'"),
        (0, OverlapPolicy.QUEUE, 1, True, S.QUEUED, None),
        (0, OverlapPolicy.SKIP, 0, True, S.QUEUED, None),
        (0, None, 0, False, S.SKIPPED, "agent is disabled"),
    ],
)
def test_admission(
    depth: int,
    overlap: OverlapPolicy | None,
    active: int,
    enabled: bool,
    status: S,
    reason: str | None,
) -> None:
    admission = decide_admission(
        backlog_depth=depth,
        max_backlog_depth=50,
        overlap=overlap,
        active_for_schedule=active,
        agent_enabled=enabled,
    )
    assert admission.status is status
    if reason is None:
        assert admission.reason is None
    else:
        assert admission.reason is not None and admission.reason.startswith(reason)


@pytest.mark.parametrize(
    ("exit_code", "error_class", "codes", "status", "cls"),
    [
        (0, None, (0,), S.SUCCESS, None),
        (1, None, (0,), S.FAILED, "exit_code"),
        (3, None, (0, 3), S.SUCCESS, None),
        (0, "timed_out", (0,), S.FAILED, "timed_out"),
        (None, "child_exited_early", (0,), S.FAILED, "child_exited_early"),
        (None, None, (0,), S.FAILED, "no_exit_code"),
    ],
)
def test_outcome(
    exit_code: int | None,
    error_class: str | None,
    codes: tuple[int, ...],
    status: S,
    cls: str | None,
) -> None:
    outcome = decide_outcome(exit_code, error_class, None, codes)
    assert (outcome.status, outcome.error_class) == (status, cls)


def test_reclaim_only_slots_of_rows_not_running_past_the_grace() -> None:
    holders = [
        SlotHolder("running-old", 0, S.RUNNING, "a"),
        SlotHolder("done-old", 0, S.SUCCESS, "a"),
        SlotHolder("gone-old", 0, None),
        SlotHolder("queued-fresh", 9_000, S.QUEUED, "a"),
        SlotHolder("queued-old", 6_999, S.QUEUED, "a"),
    ]
    assert decide_reclaim(holders, "a", now_ms=10_000, grace_ms=3_000) == [
        "done-old",
        "gone-old",
        "queued-old",
    ]


@pytest.mark.parametrize(
    ("holder", "reclaimed"),
    [
        (SlotHolder("mine", 0, S.RUNNING, "a"), False),
        (SlotHolder("theirs", 0, S.RUNNING, "b"), True),  # another agent's running execution
        (SlotHolder("theirs-fresh", 9_000, S.RUNNING, "b"), False),  # within the grace
        (SlotHolder("future-done", 3_600_000, S.SUCCESS, "a"), True),  # a score in the future
        (SlotHolder("future-near", 12_000, S.QUEUED, "a"), False),  # within the grace ahead
        (SlotHolder("future-running", 3_600_000, S.RUNNING, "a"), False),  # held rightly
        (SlotHolder("finalizing", 0, S.FINALIZING, "a"), True),
    ],
)
def test_a_slot_is_held_rightly_only_by_its_own_agents_running_row(
    holder: SlotHolder, reclaimed: bool
) -> None:
    assert (decide_reclaim([holder], "a", now_ms=10_000, grace_ms=3_000) != []) is reclaimed


def test_restore_a_slot_for_every_running_row_that_is_not_a_member_of_its_agents_slots() -> None:
    running = [
        RunningRow("held", "a", 100, 60),
        RunningRow("lost", "a", 200, 60),
        RunningRow("undispatched", "b", None, 90),
        RunningRow("held-elsewhere", "b", 300, 60),  # a member of a's slots counts for nothing
    ]
    members = {"a": {"held", "held-elsewhere"}}
    assert decide_restore(running, members, now_ms=5_000) == [
        SlotRestore("a", "lost", 200, 60),
        SlotRestore("b", "undispatched", 5_000, 90),
        SlotRestore("b", "held-elsewhere", 300, 60),
    ]
