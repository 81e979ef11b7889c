"""Keeping the embedded redis-server alive: a dead one is started again, with backoff.

Without this a killed or crashed embedded server stalled all work for good while the API still
accepted submissions. The supervisor pings the server's socket every ``WATCH_INTERVAL_S``; when it
stops answering it says so once, restarts it (``EmbeddedRedis.revive``: same data dir, same AOF,
so at most about a second of writes is lost, and the dispatcher's slot recovery rebuilds what
was), retries a failed restart with ``compute_backoff`` (logging at most one line a minute), and
says once when it is back. ``/readyz`` answers 503 meanwhile, because its Redis ping fails.

Must not: supervise an external Redis (``SHEPHERD_REDIS_URL``): that one is someone else's to
restart; the control plane only retries it, quietly.
"""

from __future__ import annotations

import asyncio
import logging
import random

from shepherd.core.backoff import compute_backoff
from shepherd.errors import EmbeddedRedisError
from shepherd.log_throttle import LogThrottle
from shepherd.stores.redis.embedded import EmbeddedRedis

log = logging.getLogger("shepherd.stores.redis.supervisor")

# One ping a second: work stalls at most about a second longer than the restart itself takes.
WATCH_INTERVAL_S = 1.0
# A restart that fails (a server still loading, a full disk) is tried again soon, then less often.
RESTART_BASE_S = 0.5
RESTART_MAX_S = 30.0


class EmbeddedSupervisor:
    def __init__(self, embedded: EmbeddedRedis, interval_s: float = WATCH_INTERVAL_S) -> None:
        self._embedded = embedded
        self._interval_s = interval_s
        self._quiet = LogThrottle(log)
        self.restarts = 0

    async def run(self) -> None:
        """Watch forever (a guarded task runs this)."""
        while True:
            await asyncio.sleep(self._interval_s)
            if not await self._embedded.answers():
                await self.bring_back()

    async def bring_back(self) -> None:
        """Restart the server, retrying with backoff until it answers again."""
        loop = asyncio.get_running_loop()
        down_at = loop.time()
        log.warning("the embedded redis-server at %s stopped answering; restarting it",
                    self._embedded.socket)
        attempt = 0
        while True:
            try:
                started = await self._embedded.revive()
                break
            except EmbeddedRedisError as exc:
                self._quiet.log("restart", logging.WARNING,
                                "the embedded redis-server did not restart yet: %s", exc.message)
                delay = compute_backoff(attempt, RESTART_BASE_S, RESTART_MAX_S, 0.5,
                                        random.random())
                attempt += 1
                await asyncio.sleep(delay)
        self._quiet.clear("restart")
        self.restarts += 1
        by = "restarted" if started else "restarted by another process"
        log.warning("the embedded redis-server is back (pid %s, %s) after %.1f s",
                    self._embedded.pid(), by, loop.time() - down_at)
