"""The outcome of a finished child: the exit code decides; an unread input fails a run only for
an agent that requires its input read."""

from __future__ import annotations

import itertools

import pytest

from shepherd.core.outcome import decide_outcome
from shepherd.core.status import ExecutionStatus as S

OK, FAIL = S.SUCCESS, S.FAILED


@pytest.mark.parametrize(
    ("exit_code", "error_class", "input_unread", "require", "status", "cls"),
    [
        # exit code, runtime flag, unread?, required?  -> status, error class
        (0, None, False, False, OK, None),
        (0, None, True, False, OK, None),
        (0, None, False, True, OK, None),
        (0, None, True, True, FAIL, "child_exited_early"),
        (3, None, False, False, FAIL, "exit_code"),
        (3, None, True, False, FAIL, "exit_code"),
        (3, None, False, True, FAIL, "exit_code"),
        (3, None, True, True, FAIL, "child_exited_early"),
        (None, None, False, False, FAIL, "no_exit_code"),
        (None, None, True, True, FAIL, "no_exit_code"),
        (0, "timed_out", False, False, FAIL, "timed_out"),
        (0, "timed_out", True, True, FAIL, "timed_out"),
        (-9, "terminated", True, False, FAIL, "terminated"),
        (None, "spawn_failed", False, True, FAIL, "spawn_failed"),
        (None, "runtime_restarted", True, True, FAIL, "runtime_restarted"),
        # What a runtime of the previous protocol reported for an unread input.
        (None, "child_exited_early", False, False, FAIL, "child_exited_early"),
    ],
)
def test_outcome_table(
    exit_code: int | None, error_class: str | None, input_unread: bool, require: bool,
    status: S, cls: str | None,
) -> None:
    outcome = decide_outcome(exit_code, error_class, None, (0,), input_unread=input_unread,
                             require_input_read=require)
    assert (outcome.status, outcome.error_class) == (status, cls)
    assert (outcome.error is None) == (status is OK)


@pytest.mark.parametrize(("exit_code", "codes", "error_class"), list(itertools.product(
    (0, 1, 3, 255, -9, None), ((0,), (0, 3), (3,)), (None, "timed_out"))))
def test_an_unread_input_never_changes_the_outcome_of_an_agent_that_does_not_require_it(
    exit_code: int | None, codes: tuple[int, ...], error_class: str | None
) -> None:
    read = decide_outcome(exit_code, error_class, None, codes, input_unread=False)
    unread = decide_outcome(exit_code, error_class, None, codes, input_unread=True)
    assert read == unread


def test_a_required_but_unread_input_says_which_exit_code_the_child_had() -> None:
    outcome = decide_outcome(3, None, None, (0,), input_unread=True, require_input_read=True)
    assert outcome.error is not None and "code 3" in outcome.error


def test_accepted_exit_codes_are_named_when_a_code_is_not_one_of_them() -> None:
    outcome = decide_outcome(1, None, None, (0, 3))
    assert (outcome.status, outcome.error) == (FAIL, "exit code 1 (success is: 0, 3)")
