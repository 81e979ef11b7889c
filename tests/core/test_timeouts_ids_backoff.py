"""Timeout resolution, execution ids, agent names and the backoff formula."""

from __future__ import annotations

import pytest

from shepherd.core.backoff import compute_backoff
from shepherd.core.ids import format_execution_id, validate_agent_name
from shepherd.core.timeouts import DEFAULT_EXECUTION_TIMEOUT_S, resolve_timeout_s, slot_ttl_s


@pytest.mark.parametrize(
    ("schedule", "agent", "expected"),
    [
        (30, 60, 30),
        (None, 60, 60),
        (None, None, DEFAULT_EXECUTION_TIMEOUT_S),
        (30, None, 30),
    ],
)
def test_timeout_is_the_schedules_else_the_agents_else_900(
    schedule: int | None, agent: int | None, expected: int
) -> None:
    assert resolve_timeout_s(schedule, agent) == expected


def test_default_timeout_is_900_seconds_and_slots_outlive_it_by_300() -> None:
    assert DEFAULT_EXECUTION_TIMEOUT_S == 900
    assert slot_ttl_s(900) == 1200


def test_execution_ids_sort_by_creation_time() -> None:
    ids = [format_execution_id(ms, bytes([255 - i] * 5)) for i, ms in enumerate((5, 60, 1000))]
    assert ids == sorted(ids)
    assert len(ids[0]) == 23


def test_execution_id_rejects_short_entropy() -> None:
    with pytest.raises(ValueError, match="5 bytes"):
        format_execution_id(1, b"ab")


@pytest.mark.parametrize("name", ["echo", "a", "flaky-1", "x.y_z", "0agent"])
def test_valid_agent_names_pass(name: str) -> None:
    assert validate_agent_name(name) == name


@pytest.mark.parametrize("name", ["", "Echo", "a:b", "-a", "a b", "a" * 64, "é"])
def test_invalid_agent_names_say_what_is_accepted(name: str) -> None:
    with pytest.raises(ValueError, match="lowercase letters"):
        validate_agent_name(name)


@pytest.mark.parametrize(
    ("attempt", "draw", "expected"),
    [(0, 0.0, 0.5), (0, 0.99, 0.995), (1, 0.0, 1.0), (3, 0.0, 4.0), (10, 0.0, 5.0), (10, 0.5, 7.5)],
)
def test_backoff_doubles_caps_and_jitters(attempt: int, draw: float, expected: float) -> None:
    assert compute_backoff(attempt, base_s=1.0, max_s=10.0, jitter=0.5, draw=draw) == pytest.approx(
        expected
    )


def test_backoff_rejects_negative_attempts() -> None:
    with pytest.raises(ValueError):
        compute_backoff(-1, 1.0, 2.0, 0.0, 0.0)
