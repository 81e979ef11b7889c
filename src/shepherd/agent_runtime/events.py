"""The runtime's event log: ``started`` and ``exited`` with a monotonic seq, and a long-poll.

Seqs start at 1 in every boot; the log keeps the most recent events (a control plane that fell
further behind re-reads the registry instead, which it does after every boot change anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from shepherd.agent_client.protocol import EventKind, RuntimeEvent

MAX_EVENTS = 10_000


class EventLog:
    def __init__(self) -> None:
        self._events: deque[RuntimeEvent] = deque(maxlen=MAX_EVENTS)
        self.last_seq = 0
        self.last_exit_seq = 0
        self._changed = asyncio.Condition()

    async def emit(
        self, kind: EventKind, execution_id: str, at_ms: int, exit_code: int | None = None,
        error_class: str | None = None,
    ) -> None:
        async with self._changed:
            self.last_seq += 1
            if kind is EventKind.EXITED:
                self.last_exit_seq = self.last_seq
            self._events.append(RuntimeEvent(
                seq=self.last_seq, kind=kind, execution_id=execution_id, at_ms=at_ms,
                exit_code=exit_code, error_class=error_class,
            ))
            self._changed.notify_all()

    def after(self, seq: int) -> list[RuntimeEvent]:
        """From the newest back to ``seq``: a follower asks for the last few of up to
        ``MAX_EVENTS``, and seqs only grow."""
        newer: list[RuntimeEvent] = []
        for event in reversed(self._events):
            if event.seq <= seq:
                break
            newer.append(event)
        newer.reverse()
        return newer

    async def wait_after(self, seq: int, wait_s: float, until_exit: bool = False
                         ) -> list[RuntimeEvent]:
        """Events after ``seq``; waits up to ``wait_s`` for the first one (with ``until_exit``,
        for the first ``exited`` one: a follower that acts on exits only is not woken for each
        start)."""

        def arrived() -> bool:
            return (self.last_exit_seq if until_exit else self.last_seq) > seq

        async with self._changed:
            if not arrived() and wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait_for(arrived), wait_s)
        return self.after(seq)
