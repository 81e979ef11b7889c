"""Each agent's event cursor: the last runtime event seq the monitor consumed and the boot id it
belongs to, when the runtime last answered (``seen_at_ms``) and when it booted (``booted_at_ms``),
both for the dashboard. Reconcile requests on the same hash are ``reconcile.py``'s.

A lost cursor (Redis flushed or restarted without persistence) reads as "no boot seen yet": the
monitor then starts the runtime's stream from the beginning and runs a registry pass, which
settles whatever it missed, so cursors need no rebuild after Redis loses its data.
Guarantees: every call is translated (``RedisStoreError``).
"""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys


class CursorStore:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    async def load(self, agent: str) -> tuple[int, str | None]:
        """``(seq, boot_id)``; ``(0, None)`` when there is no cursor."""
        async with translated(f"read cursor of {agent}"):
            raw = cast("dict[str, str]",
                       await self._client.hgetall(self._keys.agent_cursor(agent)))
        return int(raw.get("seq", 0)), raw.get("boot_id")

    async def save(self, agent: str, seq: int, boot_id: str, seen_at_ms: int) -> None:
        """Where the stream stands; every answered poll also stamps ``seen_at_ms``."""
        async with translated(f"save cursor of {agent}"):
            await self._client.hset(
                self._keys.agent_cursor(agent),
                mapping={"seq": seq, "boot_id": boot_id, "seen_at_ms": seen_at_ms},
            )

    async def record_boot(self, agent: str, booted_at_ms: int) -> None:
        async with translated(f"record the boot of {agent}"):
            await self._client.hset(self._keys.agent_cursor(agent), "booted_at_ms", booted_at_ms)
