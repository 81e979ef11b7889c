"""The dispatcher's claims kept for the watchers: as claimed, without their input, taken once,
forgotten when a start did not happen, and bounded."""

from __future__ import annotations

from shepherd.controllers.claimed import ClaimedRows
from shepherd.core.models import Execution, Trigger
from shepherd.core.status import ExecutionStatus


def _queued(execution_id: str) -> Execution:
    return Execution(id=execution_id, agent="a", schedule_id=None, trigger=Trigger.API,
                     input="a long input", status=ExecutionStatus.QUEUED, attempt=1,
                     max_attempts=3, retry_of=None, timeout_s=60, queued_at_ms=100)


def test_a_claimed_row_is_taken_once_as_claimed_and_without_its_input() -> None:
    rows = ClaimedRows()
    rows.claimed([_queued("e1"), _queued("e2")], dispatched_at_ms=500)
    found, missing = rows.take(["e1", "e3"])
    [row] = found
    assert (row.id, row.status, row.dispatched_at_ms, row.input) == (
        "e1", ExecutionStatus.RUNNING, 500, "")
    assert (row.attempt, row.max_attempts) == (1, 3)
    assert missing == ["e3"]
    assert rows.take(["e1"]) == ([], ["e1"])


def test_a_row_that_did_not_start_is_forgotten() -> None:
    rows = ClaimedRows()
    rows.claimed([_queued("e1")], dispatched_at_ms=500)
    rows.forget("e1")
    assert rows.take(["e1"]) == ([], ["e1"])


def test_the_oldest_claims_go_first_past_the_bound() -> None:
    rows = ClaimedRows(max_rows=2)
    rows.claimed([_queued("e1"), _queued("e2")], dispatched_at_ms=1)
    rows.claimed([_queued("e1")], dispatched_at_ms=2)  # claimed again: the newest
    rows.claimed([_queued("e3")], dispatched_at_ms=3)
    found, missing = rows.take(["e1", "e2", "e3"])
    assert [(r.id, r.dispatched_at_ms) for r in found] == [("e1", 2), ("e3", 3)]
    assert missing == ["e2"]
