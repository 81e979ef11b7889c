"""The demo's live summary: one compact line a person can watch, printed when something changed.

``agents 5 · running 3 · queued 8 · last 5 min: 21 success, 4 failed (exit 2 x3,
child_exited_early x1) · recoveries: 2 retried``

Current counts come from SQL at each pass; outcomes and recoveries come from the event log,
followed with a cursor (``transitions_after``) so a pass reads only what happened since the last
one. A recovery is a transition in which Shepherd repaired something on its own: a retry, a
refused dispatch put back in the backlog, an orphan or a run past its timeout settled, a lost
agent's work released. Read-only; a store error skips a pass, never ends the summary.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from shepherd.core.clock import Clock
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.errors import ShepherdError
from shepherd.stores.sql.database import Database
from shepherd.stores.sql.feed import StatusChange

log = logging.getLogger("shepherd.app.summary")

# Often enough to watch a burst drain, rarely enough to read each line.
SUMMARY_INTERVAL_S = 3.0
OUTCOME_WINDOW_MS = 5 * 60 * 1000
RECOVERIES: dict[Cause, str] = {
    Cause.RETRY: "retried",
    Cause.DISPATCH_REFUSED: "dispatch put back",
    Cause.ORPHANED: "orphans settled",
    Cause.TIMED_OUT: "timeouts settled",
    Cause.AGENT_LOST: "lost-agent runs settled",
    Cause.BACKSTOP: "stuck runs settled",
}
ORDER = (ExecutionStatus.SUCCESS, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED,
         ExecutionStatus.SKIPPED)
TERMINAL = frozenset(ORDER)


@dataclass
class FleetSummary:
    """What the line says, kept up to date by ``observe`` and ``set_counts``."""

    agents: int = 0
    running: int = 0
    queued: int = 0
    outcomes: deque[tuple[int, str]] = field(default_factory=deque)  # (at_ms, label)
    recoveries: Counter[str] = field(default_factory=Counter)
    cursor: int = 0

    def observe(self, transitions: list[StatusChange]) -> None:
        for t in transitions:
            self.cursor = max(self.cursor, t.event_id)
            if t.to_status in TERMINAL:
                self.outcomes.append((t.at_ms, outcome_label(t)))
            if t.cause in RECOVERIES:
                self.recoveries[RECOVERIES[t.cause]] += 1

    def render(self, now_ms: int) -> str:
        while self.outcomes and self.outcomes[0][0] < now_ms - OUTCOME_WINDOW_MS:
            self.outcomes.popleft()
        parts = [f"agents {self.agents}", f"running {self.running}", f"queued {self.queued}",
                 f"last 5 min: {_outcomes(Counter(label for _, label in self.outcomes))}",
                 f"recoveries: {_counts(self.recoveries) or 'none'}"]
        return " · ".join(parts)


def outcome_label(t: StatusChange) -> str:
    """``success``, or ``failed:exit 2`` / ``failed:child_exited_early``: what ended the run."""
    if t.to_status is not ExecutionStatus.FAILED:
        return t.to_status.value
    if t.error_class in (None, "exit_code") and t.exit_code is not None:
        return f"failed:exit {t.exit_code}"
    return f"failed:{t.error_class or (t.cause.value if t.cause else 'unknown')}"


def _outcomes(counts: Counter[str]) -> str:
    if not counts:
        return "nothing finished"
    by_status: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for label, n in counts.items():
        status, _, reason = label.partition(":")
        by_status[status] += n
        if reason:
            reasons[reason] += n
    order = [s.value for s in ORDER]
    text = ", ".join(f"{by_status[status]} {status}" for status in order if by_status[status])
    detail = ", ".join(f"{reason} x{n}" for reason, n in reasons.most_common())
    return f"{text} ({detail})" if detail else text


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{n} {what}" for what, n in counter.most_common())


async def refresh(summary: FleetSummary, db: Database) -> None:
    summary.agents = len([a for a in await db.agents.list() if a.enabled])
    counts = await db.executions.count_by_agent_and_status()
    summary.running = sum(n for (_, s), n in counts.items() if s == ExecutionStatus.RUNNING)
    summary.queued = sum(n for (_, s), n in counts.items() if s == ExecutionStatus.QUEUED)
    while batch := await db.feed.transitions_after(summary.cursor):
        summary.observe(batch)


async def print_summaries(
    db: Database, clock: Clock, write: Callable[[str], None],
    interval_s: float = SUMMARY_INTERVAL_S,
) -> None:
    """Forever (a guarded task): print the summary line whenever it changed."""
    summary, last = FleetSummary(), ""
    with_history = True
    while True:
        try:
            if with_history:  # start from now: what happened before this run is not news
                summary.cursor = await db.feed.head()
                with_history = False
            await refresh(summary, db)
        except ShepherdError as exc:
            log.info("summary skipped: %s", exc.message)
        else:
            line = summary.render(clock.now_ms())
            if line != last:
                write(f"{time.strftime('%H:%M:%S')}  {line}")
                last = line
        await asyncio.sleep(interval_s)


