"""The transition table, exhaustively: every (from, to, cause) is checked against the rules."""

from __future__ import annotations

import itertools

import pytest

from shepherd.core.status import (
    INITIAL,
    TERMINAL,
    TRANSITIONS,
    Cause,
    ExecutionStatus,
    allowed_from,
    is_allowed,
)

S = ExecutionStatus
ALL = list(itertools.product(ExecutionStatus, ExecutionStatus, Cause))

# The whole allowed set, written out by hand from DESIGN.md section 3 so the table is checked
# against an independent statement of the rules rather than against itself.
EXPECTED = {
    (S.QUEUED, S.RUNNING, Cause.DISPATCH),
    (S.QUEUED, S.CANCELLED, Cause.CANCEL),
    (S.QUEUED, S.CANCELLED, Cause.AGENT_DELETED),
    (S.QUEUED, S.SKIPPED, Cause.SUPERSEDED),
    (S.QUEUED, S.FAILED, Cause.EXPIRED),
    (S.QUEUED, S.FAILED, Cause.BACKSTOP),
    (S.RUNNING, S.FINALIZING, Cause.CHILD_EXITED),
    (S.RUNNING, S.FAILED, Cause.TIMED_OUT),
    (S.RUNNING, S.FAILED, Cause.ORPHANED),
    (S.RUNNING, S.FAILED, Cause.AGENT_LOST),
    (S.RUNNING, S.FAILED, Cause.BACKSTOP),
    (S.RUNNING, S.FAILED, Cause.DISPATCH_REJECTED),
    (S.RUNNING, S.CANCELLED, Cause.CANCEL),
    (S.RUNNING, S.QUEUED, Cause.DISPATCH_REFUSED),
    (S.FINALIZING, S.SUCCESS, Cause.FINALIZED),
    (S.FINALIZING, S.FAILED, Cause.FINALIZED),
    (S.FINALIZING, S.FAILED, Cause.BACKSTOP),
    (S.FINALIZING, S.FAILED, Cause.RESULT_LOST),
}


@pytest.mark.parametrize(("frm", "to", "cause"), ALL, ids=lambda v: str(v))
def test_every_transition_is_allowed_exactly_when_the_design_says(
    frm: ExecutionStatus, to: ExecutionStatus, cause: Cause
) -> None:
    assert is_allowed(frm, to, cause) == ((frm, to, cause) in EXPECTED)


def test_terminal_statuses_are_write_once() -> None:
    for frm, to, cause in ALL:
        if frm in TERMINAL:
            assert not is_allowed(frm, to, cause)


def test_cancelled_is_sticky() -> None:
    assert not any(is_allowed(S.CANCELLED, to, c) for _, to, c in ALL)


def test_running_goes_back_to_queued_only_as_a_refused_dispatch() -> None:
    causes = {c for c in Cause if is_allowed(S.RUNNING, S.QUEUED, c)}
    assert causes == {Cause.DISPATCH_REFUSED}


def test_a_retry_and_a_stray_note_are_never_transitions() -> None:
    assert not any(Cause.RETRY in causes or Cause.STRAY_TERMINATED in causes
                   for causes in TRANSITIONS.values())


def test_no_transition_stays_in_place() -> None:
    assert all(frm != to for frm, to in TRANSITIONS)


@pytest.mark.parametrize(("to", "cause"), list(itertools.product(ExecutionStatus, Cause)))
def test_allowed_from_is_the_inverse_of_the_table(to: ExecutionStatus, cause: Cause) -> None:
    assert allowed_from(to, cause) == {f for f in ExecutionStatus if is_allowed(f, to, cause)}


def test_terminal_and_initial_sets() -> None:
    assert {s for s in ExecutionStatus if s.is_terminal} == {
        S.SUCCESS,
        S.FAILED,
        S.CANCELLED,
        S.SKIPPED,
    }
    assert {S.QUEUED, S.SKIPPED} == INITIAL
