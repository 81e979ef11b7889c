"""Recording what runtimes answered to starts (pid, start instant, boot id) a moment late.

The dispatcher's hand-overs give their answers to a ``StartRecorder``, which writes them
``RECORD_AFTER_S`` later, in one statement for every answer that came meanwhile (a row's start
was never recorded sooner than the runtime's answer arrived: it is only not yet written for a
few more milliseconds). A run whose result a watcher took up in that time is left out: its
result carries the same start (``ResultWriter.plan``), and the row would no longer take it
anyway. For a quick child that is the common case, and one statement per execution less.

Must not: hold a start back for longer than ``RECORD_AFTER_S``, or lose one: ``stop`` writes
what is pending. A store that refuses the write leaves those rows without their start, as a
failed write after a hand-over always did (the monitor's registry pass settles what matters).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from shepherd.controllers.claimed import ClaimedRows
from shepherd.errors import StoreError
from shepherd.log_throttle import LogThrottle
from shepherd.stores.sql.database import Database
from shepherd.stores.sql.starts import RuntimeStart

log = logging.getLogger("shepherd.controllers.start_records")
# Longer than a quick child takes from its start to its result being taken up (a few
# milliseconds), far shorter than anything that reads a running row's pid waits for.
RECORD_AFTER_S = 0.025


class StartRecorder:
    def __init__(self, db: Database, claimed: ClaimedRows,
                 delay_s: float = RECORD_AFTER_S) -> None:
        self._db = db
        self._claimed = claimed
        self._delay_s = delay_s
        self._pending: list[RuntimeStart] = []
        self._timer: asyncio.Task[None] | None = None
        self._flushing = False
        self._quiet = LogThrottle(log)

    def add(self, starts: Sequence[RuntimeStart]) -> None:
        self._pending.extend(starts)
        if self._timer is None and self._pending:
            self._timer = asyncio.create_task(self._later(), name="start-records")

    async def _later(self) -> None:
        await asyncio.sleep(self._delay_s)
        self._flushing = True
        try:
            await self.flush()
        finally:
            self._flushing = False
            self._timer = None
        if self._pending:  # answers that came while it wrote
            self._timer = asyncio.create_task(self._later(), name="start-records")

    async def flush(self) -> None:
        """Write what is pending now (the runs whose results were taken up left out)."""
        pending, self._pending = self._pending, []
        starts = [s for s in pending if not self._claimed.was_taken(s.execution_id)]
        if not starts:
            return
        try:
            await self._db.executions.record_starts(starts)
        except StoreError as exc:  # one line a minute while the store stays down
            self._quiet.log("store", logging.WARNING, "could not record %d start(s); their "
                            "rows stay running without them (%s)", len(starts), exc.message)

    async def stop(self) -> None:
        """Write what is pending at once, after a write under way (never cut short)."""
        while (timer := self._timer) is not None:
            if not self._flushing:
                timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
            if self._timer is timer:
                self._timer = None
        await self.flush()
