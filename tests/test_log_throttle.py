"""Quiet logging of repeated conditions: the first line at once, then one per interval."""

from __future__ import annotations

import logging

import pytest

from shepherd.log_throttle import LogThrottle


def test_a_repeated_condition_is_written_once_per_interval_with_the_count_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    quiet = LogThrottle(logging.getLogger("t"), interval_s=60, monotonic=lambda: now[0])
    caplog.set_level(logging.INFO)
    assert quiet.log("redis", logging.WARNING, "down: %s", "x")
    for _ in range(5):
        now[0] += 10
        assert not quiet.log("redis", logging.WARNING, "down: %s", "x")
    now[0] += 10.5
    assert quiet.log("redis", logging.WARNING, "down: %s", "x")
    assert quiet.log("other", logging.WARNING, "another key")
    assert [r.getMessage() for r in caplog.records] == [
        "down: x", "down: x (5 more since the last line)", "another key"
    ]
    assert quiet.active("redis")
    assert quiet.clear("redis") is True
    assert quiet.clear("redis") is False
    assert quiet.log("redis", logging.WARNING, "down again")  # a new condition: said at once
