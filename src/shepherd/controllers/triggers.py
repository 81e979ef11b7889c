"""What makes the watchdog run before its interval: reconcile requests and due deadlines.

``WatchdogTriggers`` is the ``Wakeup`` its controller loop waits on. Reconcile requests heard on
the Redis channel (``listen``, run as a guarded task on every replica) are collected by agent name
and poke the loop, so the leader reconciles that agent at once; ``wake_in`` makes the next wait
end when an unreachable agent would turn lost, so it is declared lost on time rather than up to
an interval late. A non-leader collects names too and simply never acts on them.

Must not: run a cycle itself or decide which agents to reconcile (the watchdog does both).
"""

from __future__ import annotations

import asyncio
import logging
import time

from shepherd.controllers.base import Wakeup
from shepherd.errors import StoreError
from shepherd.log_throttle import LogThrottle
from shepherd.stores.redis.connection import RedisHandle

log = logging.getLogger("shepherd.controllers.triggers")
# A Redis that dropped the subscription is asked again this often (one line a minute says so).
LISTEN_RETRY_S = 1.0


class WatchdogTriggers(Wakeup):
    def __init__(self) -> None:
        super().__init__()
        self._requested: set[str] = set()
        self._due_monotonic: float | None = None
        self._quiet = LogThrottle(log)

    def note(self, agent: str) -> None:
        """A reconcile of ``agent`` was requested: wake the loop."""
        self._requested.add(agent)
        self.poke()

    def take(self) -> set[str]:
        """The agents requested since the last take."""
        taken, self._requested = self._requested, set()
        return taken

    def wake_in(self, seconds: float | None) -> None:
        """End the waits after ``seconds`` at the latest, until then (None: only the interval)."""
        self._due_monotonic = None if seconds is None else time.monotonic() + max(0.0, seconds)

    async def wait(self, timeout_s: float) -> bool:
        """Like ``Wakeup.wait``, but no later than the due instant; a due instant that has
        passed is dropped (the pass it woke has run)."""
        if self._due_monotonic is not None:
            remaining = self._due_monotonic - time.monotonic()
            if remaining <= 0:
                self._due_monotonic = None
            else:
                timeout_s = min(timeout_s, remaining)
        return await super().wait(timeout_s)

    async def listen(self, redis: RedisHandle) -> None:
        """Hear reconcile requests until cancelled (run it as a guarded task). A Redis that is
        down is retried quietly: a request announced meanwhile is still on its agent's cursor
        hash, where the next full cycle finds it."""
        while True:
            try:
                await redis.reconcile.listen(self.note)
            except StoreError as exc:
                self._quiet.log("redis", logging.WARNING, "watchdog: not hearing reconcile "
                                "requests, retrying (%s)", exc.message)
                await asyncio.sleep(LISTEN_RETRY_S)
