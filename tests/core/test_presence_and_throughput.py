"""The fleet page's pure parts: an agent's state in one word, and the hour of throughput."""

from __future__ import annotations

import pytest

from shepherd.core.events import Event, TransitionRecord, transition_event
from shepherd.core.ids import ExecutionId
from shepherd.core.models import ExecutionEvent
from shepherd.core.presence import AgentState, decide_agent_state, silent_after_ms
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.core.throughput import (
    CHART_MINUTES,
    MINUTE_MS,
    MinuteCounts,
    bucket_completions,
    per_minute,
    window_start_ms,
)

NOW = 1_700_000_000_000
WINDOW = 45_000


@pytest.mark.parametrize(
    ("enabled", "has_url", "seen", "state"),
    [
        (False, True, NOW, AgentState.DISABLED),
        (False, False, None, AgentState.DISABLED),
        (True, False, None, AgentState.NO_RUNTIME),
        (True, False, NOW, AgentState.NO_RUNTIME),
        (True, True, None, AgentState.WAITING),
        (True, True, NOW, AgentState.UP),
        (True, True, NOW - WINDOW, AgentState.UP),
        (True, True, NOW - WINDOW - 1, AgentState.SILENT),
    ],
)
def test_the_state_of_an_agent(
    enabled: bool, has_url: bool, seen: int | None, state: AgentState
) -> None:
    assert decide_agent_state(enabled=enabled, has_url=has_url, seen_at_ms=seen, now_ms=NOW,
                              silent_after=WINDOW) is state


def test_an_agent_is_silent_after_two_missed_long_polls_and_some_slack() -> None:
    assert silent_after_ms(20) == 45_000


def test_completions_land_in_their_minute_and_idle_minutes_are_zero() -> None:
    now = 10 * 60 * MINUTE_MS + 30_000  # half way through minute 600
    current, first = 600, 600 - CHART_MINUTES + 1
    rows = [(current, "success", 3), (current, "failed", 1), (current, "cancelled", 2),
            (current - 1, "skipped", 1), (first, "success", 4), (first - 1, "success", 99),
            (current + 1, "success", 99)]
    buckets = bucket_completions(rows, now)
    assert len(buckets) == CHART_MINUTES
    assert buckets[-1] == MinuteCounts(current * MINUTE_MS, 3, 1, 2)
    assert buckets[-2] == MinuteCounts((current - 1) * MINUTE_MS, 0, 0, 1)
    assert buckets[0] == MinuteCounts(first * MINUTE_MS, 4, 0, 0)
    assert sum(b.total for b in buckets[1:-2]) == 0
    assert window_start_ms(now) == first * MINUTE_MS


@pytest.mark.parametrize(
    ("totals", "into_minute_ms", "rate"),
    [
        ([0, 0, 0, 0, 0], 0, 0.0),
        ([10, 10, 10, 10, 0], 0, 10.0),  # the current minute has just begun
        ([10, 10, 10, 10, 5], 30_000, 10.0),  # half a minute, half the count
        ([0, 0, 0, 0, 3], 0, 0.75),  # four whole minutes covered
    ],
)
def test_executions_per_minute(totals: list[int], into_minute_ms: int, rate: float) -> None:
    buckets = [MinuteCounts(i * MINUTE_MS, succeeded=n) for i, n in enumerate(totals)]
    assert per_minute(buckets, 4 * MINUTE_MS + into_minute_ms) == pytest.approx(rate)


def test_a_rate_over_one_partial_minute_never_divides_by_less_than_a_minute() -> None:
    assert per_minute([MinuteCounts(0, succeeded=3)], 1_000, minutes=1) == 3.0


def test_a_transition_becomes_an_event_scoped_to_its_agent() -> None:
    record = TransitionRecord(
        ExecutionEvent(ExecutionId("e1"), 42, ExecutionStatus.QUEUED, ExecutionStatus.RUNNING,
                       Cause.DISPATCH, "dispatcher", None, NOW),
        agent="alpha", schedule_id="sch_1",
    )
    event = transition_event(record)
    assert event == Event(
        "execution.transition", "executions", 42, NOW, "alpha", "e1",
        {"execution_id": "e1", "schedule_id": "sch_1", "from": "queued", "to": "running",
         "cause": "dispatch", "actor": "dispatcher", "reason": None},
    )
    assert event.visible_to(None) and event.visible_to("alpha")
    assert not event.visible_to("beta")
