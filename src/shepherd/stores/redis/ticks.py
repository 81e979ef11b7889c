"""Records of work done: each controller's last tick and report summary, and the drain tick.

Guarantees: every write is translated (``RedisStoreError``), so a controller loop that records its
tick while Redis is down sees one store error, never a redis-py exception.
Must not: decide anything from these records; readers (/metrics, status views, canary) do.
"""

from __future__ import annotations

from redis.asyncio import Redis

from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys


class TickStore:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    async def record_controller(self, controller: str, tick_at_ms: int, summary: str) -> None:
        """``controller:{c}:tick_at`` and ``controller:{c}:last_report`` in one command."""
        async with translated(f"record tick of {controller}"):
            await self._client.mset({self._keys.controller_tick_at(controller): tick_at_ms,
                                     self._keys.controller_report(controller): summary})

    async def record_drain(self, now_ms: int) -> None:
        """``drain:tick_at``: the end of a successful backlog sweep (invariant B-02)."""
        async with translated("record drain tick"):
            await self._client.set(self._keys.drain_tick_at(), now_ms)
