"""The rows this process's dispatcher claimed, as claimed, for storing their results.

A result that arrives on the event stream is planned from its row (attempt, retry policy,
webhook fields), which the dispatcher held a moment before when it claimed it: the watcher takes
it from here instead of reading it back, and reads only the rows it does not find (claimed by
another replica, or before a restart). A row here may have ended meanwhile (cancelled, failed by
the watchdog): its write then loses the CAS like any stale reading, and the writer reads what
became of it. Rows are kept without their input (never needed for a result) and at most
``MAX_ROWS`` of them, the oldest dropped first: a row whose result came by another path is
forgotten that way. The ids whose results were taken up are remembered as long (the
dispatcher's ``StartRecorder`` need not record the start of a run whose result carries it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from shepherd.core.models import Execution
from shepherd.core.status import ExecutionStatus

MAX_ROWS = 10_000


class ClaimedRows:
    def __init__(self, max_rows: int = MAX_ROWS) -> None:
        self._rows: dict[str, Execution] = {}
        self._taken: dict[str, None] = {}  # the ids whose results were taken, newest last
        self._max_rows = max_rows

    def claimed(self, rows: Iterable[Execution], dispatched_at_ms: int) -> None:
        """``rows`` as read before their claim, now won: running since ``dispatched_at_ms``."""
        for row in rows:
            self._rows.pop(row.id, None)
            self._rows[row.id] = replace(row, status=ExecutionStatus.RUNNING, input="",
                                         dispatched_at_ms=dispatched_at_ms)
        while len(self._rows) > self._max_rows:
            del self._rows[next(iter(self._rows))]

    def forget(self, execution_id: str) -> None:
        """A claimed row that did not start (sent back to the backlog, or failed)."""
        self._rows.pop(execution_id, None)

    def take(self, ids: Iterable[str]) -> tuple[list[Execution], list[str]]:
        """The rows of ``ids`` found here (removed), and the ids that were not."""
        found, missing = [], []
        for execution_id in ids:
            row = self._rows.pop(execution_id, None)
            if row is None:
                missing.append(execution_id)
            else:
                found.append(row)
            self._taken[execution_id] = None
        while len(self._taken) > self._max_rows:
            del self._taken[next(iter(self._taken))]
        return found, missing

    def was_taken(self, execution_id: str) -> bool:
        """Whether a watcher took up the result of ``execution_id`` (as far as this process
        remembers: a forgotten one reads False)."""
        return execution_id in self._taken
