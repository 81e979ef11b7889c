"""The retry policy: infrastructure failures retry while attempts remain; a child's own failure
only with retry_on_failure; everything else never. Pure."""

from __future__ import annotations

import pytest

from shepherd.core.cycle import Fault, judge_each
from shepherd.core.retry import (
    FAILURE_KINDS,
    Attempt,
    BackoffPolicy,
    FailureKind,
    decide_retry,
    failure_kind,
    jitter_draw,
)

NOW = 5_000_000
NO_JITTER = BackoffPolicy(base_s=2.0, max_s=300.0, jitter=0.0)


def attempt(n: int = 1, of: int = 3, on_failure: bool = False) -> Attempt:
    return Attempt("0001700000000000abcdef0123", n, of, on_failure)


@pytest.mark.parametrize("error_class", ["runtime_restarted", "orphaned", "agent_lost"])
def test_infrastructure_failures_are_retried_while_attempts_remain(error_class: str) -> None:
    plan = decide_retry(attempt(1, 3), error_class, NOW, NO_JITTER)
    assert plan is not None and plan.attempt == 2
    assert error_class in plan.reason and "attempt 2 of 3" in plan.reason
    assert decide_retry(attempt(3, 3), error_class, NOW, NO_JITTER) is None


@pytest.mark.parametrize("error_class",
                         ["exit_code", "timed_out", "child_exited_early", "spawn_failed"])
@pytest.mark.parametrize("on_failure", [False, True])
def test_a_childs_own_failure_is_retried_only_with_retry_on_failure(
    error_class: str, on_failure: bool
) -> None:
    plan = decide_retry(attempt(1, 2, on_failure), error_class, NOW, NO_JITTER)
    assert (plan is not None) is on_failure


@pytest.mark.parametrize("error_class", ["terminated", "dispatch_rejected", "expired",
                                         "no_exit_code", "something_new", None])
def test_other_failures_are_never_retried(error_class: str | None) -> None:
    assert decide_retry(attempt(1, 5, True), error_class, NOW, NO_JITTER) is None


def test_the_default_of_one_attempt_never_retries() -> None:
    assert decide_retry(attempt(1, 1), "orphaned", NOW, NO_JITTER) is None


@pytest.mark.parametrize(("n", "delay_ms"), [(1, 2_000), (2, 4_000), (3, 8_000), (9, 300_000)])
def test_the_delay_doubles_per_attempt_up_to_the_cap(n: int, delay_ms: int) -> None:
    plan = decide_retry(attempt(n, 20), "orphaned", NOW, NO_JITTER)
    assert plan is not None and plan.not_before_ms == NOW + delay_ms


def test_jitter_is_fixed_per_execution_and_spreads_a_burst() -> None:
    policy = BackoffPolicy(base_s=2.0, max_s=300.0, jitter=0.5)
    delays = set()
    for i in range(50):
        failed = Attempt(f"e{i}", 1, 2, False)
        first = decide_retry(failed, "orphaned", NOW, policy)
        again = decide_retry(failed, "orphaned", NOW, policy)
        assert first == again
        assert first is not None and NOW + 1_000 <= first.not_before_ms < NOW + 2_000
        delays.add(first.not_before_ms)
    assert len(delays) > 40
    assert all(0 <= jitter_draw(f"k{i}") < 1 for i in range(100))


def test_every_kind_in_the_table_is_named() -> None:
    assert set(FAILURE_KINDS.values()) == set(FailureKind)
    assert failure_kind(None) is FailureKind.NEVER


def test_judge_each_turns_a_raise_into_a_fault_and_goes_on() -> None:
    def judge(n: int) -> int | None:
        if n == 2:
            raise RuntimeError("boom")
        return None if n == 3 else n * 10

    judged = judge_each([1, 2, 3, 4], judge, str)
    assert judged.decisions == (10, 40)
    assert judged.faults == (Fault("2", "judge", "RuntimeError: boom"),)
