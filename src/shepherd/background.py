"""The one way Shepherd starts long-running asyncio work: a guarded task.

A guarded task logs every crash with its traceback and restarts the work after a backoff, so a bug
in one loop never silently stops it; ``stop()`` cancels it and waits with a timeout, so shutdown
is ordered and bounded. ``asyncio.CancelledError`` is never swallowed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from shepherd.core.backoff import compute_backoff

log = logging.getLogger("shepherd.background")

# Restart a crashed loop quickly at first; never hammer a broken dependency more than every 30 s.
RESTART_BASE_S = 0.5
RESTART_MAX_S = 30.0


class GuardedTask:
    """Runs ``work`` forever (until stopped); restarts it with backoff when it raises."""

    def __init__(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._work = work
        self._task: asyncio.Task[None] | None = None
        self.crashes = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._guard(), name=f"guarded:{self.name}")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _guard(self) -> None:
        attempt = 0
        while True:
            try:
                await self._work()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.crashes += 1
                delay = compute_backoff(
                    attempt, RESTART_BASE_S, RESTART_MAX_S, 0.5, random.random()
                )
                log.exception("%s crashed; restarting in %.1fs", self.name, delay)
                attempt += 1
                await asyncio.sleep(delay)

    async def stop(self, timeout_s: float = 5.0) -> None:
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        try:
            await asyncio.wait_for(task, timeout_s)
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
        except TimeoutError:
            log.error("%s did not stop within %.1fs", self.name, timeout_s)


async def stop_all(tasks: list[GuardedTask], timeout_s: float = 5.0) -> None:
    """Stop tasks in the given order, each within ``timeout_s``."""
    for task in tasks:
        await task.stop(timeout_s)
