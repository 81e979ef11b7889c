"""Execution statuses and the one table of allowed transitions (DESIGN.md section 3).

Guarantees: terminal statuses are write-once, ``cancelled`` is sticky, and ``running -> queued``
is allowed only for a refused dispatch (the runtime never accepted the attempt, so it is the same
attempt). A retry is never a transition: the failed attempt ends terminal and a new row, linked by
``retry_of``, is queued in the same transaction (``Cause.RETRY`` marks that row's first event).
The CAS repository asks this module which statuses a row may move from; nothing else decides it.
"""

from __future__ import annotations

from enum import StrEnum


class ExecutionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINALIZING = "finalizing"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {
        ExecutionStatus.SUCCESS,
        ExecutionStatus.FAILED,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.SKIPPED,
    }
)

# Statuses a new row may be inserted with: queued work, or a run that was skipped at birth
# (overlap policy ``skip``, backlog overflow).
INITIAL = frozenset({ExecutionStatus.QUEUED, ExecutionStatus.SKIPPED})


class Cause(StrEnum):
    """Why a transition happens; recorded on the event and checked against the table."""

    DISPATCH = "dispatch"  # the dispatcher handed the row to a runtime
    DISPATCH_REFUSED = "dispatch_refused"  # the runtime never accepted it: back to the backlog
    DISPATCH_REJECTED = "dispatch_rejected"  # the runtime answered the start with a 4xx
    RETRY = "retry"  # first event of a new attempt row (retry_of names the attempt it replaces)
    CHILD_EXITED = "child_exited"  # the monitor saw the child exit
    FINALIZED = "finalized"  # the finalizer stored the result
    TIMED_OUT = "timed_out"  # the watchdog terminated a child its runtime did not stop in time
    ORPHANED = "orphaned"  # the runtime does not know the execution
    AGENT_LOST = "agent_lost"  # the agent was unreachable past agent_lost_after_s
    EXPIRED = "expired"  # queued longer than max_queue_age_s
    CANCEL = "cancel"  # an operator asked
    AGENT_DELETED = "agent_deleted"  # its agent was deleted while it waited
    SUPERSEDED = "superseded"  # a newer run of the same schedule took its place
    BACKSTOP = "backstop"  # the reaper's last resort
    RESULT_LOST = "result_lost"  # the reaper found the result gone (runtime forgot it, agent lost)
    # Not a transition: a note on a row whose child still ran on its runtime and was terminated
    # there (its event keeps from_status == to_status).
    STRAY_TERMINATED = "stray_terminated"


S = ExecutionStatus
_WATCHDOG = frozenset({Cause.TIMED_OUT, Cause.ORPHANED, Cause.AGENT_LOST, Cause.BACKSTOP})
_RUN_FAILED = _WATCHDOG | {Cause.DISPATCH_REJECTED}

# (from, to) -> the causes that may drive it. Anything absent is forbidden.
TRANSITIONS: dict[tuple[ExecutionStatus, ExecutionStatus], frozenset[Cause]] = {
    (S.QUEUED, S.RUNNING): frozenset({Cause.DISPATCH}),
    (S.QUEUED, S.CANCELLED): frozenset({Cause.CANCEL, Cause.AGENT_DELETED}),
    (S.QUEUED, S.SKIPPED): frozenset({Cause.SUPERSEDED}),
    (S.QUEUED, S.FAILED): frozenset({Cause.EXPIRED, Cause.BACKSTOP}),
    (S.RUNNING, S.FINALIZING): frozenset({Cause.CHILD_EXITED}),
    (S.RUNNING, S.FAILED): _RUN_FAILED,
    (S.RUNNING, S.CANCELLED): frozenset({Cause.CANCEL}),
    (S.RUNNING, S.QUEUED): frozenset({Cause.DISPATCH_REFUSED}),
    (S.FINALIZING, S.SUCCESS): frozenset({Cause.FINALIZED}),
    (S.FINALIZING, S.FAILED): frozenset({Cause.FINALIZED, Cause.BACKSTOP, Cause.RESULT_LOST}),
}


def is_allowed(frm: ExecutionStatus, to: ExecutionStatus, cause: Cause) -> bool:
    """True when the table lets ``cause`` move a row from ``frm`` to ``to``."""
    return cause in TRANSITIONS.get((frm, to), frozenset())


def allowed_from(to: ExecutionStatus, cause: Cause) -> frozenset[ExecutionStatus]:
    """The statuses a CAS to ``to`` for ``cause`` may match (its ``WHERE status IN (...)``)."""
    return frozenset(
        frm for (frm, dst), causes in TRANSITIONS.items() if dst == to and cause in causes
    )
