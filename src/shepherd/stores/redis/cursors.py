"""Each agent's event cursor: the last runtime event seq the monitor consumed, and the boot id it
belongs to, plus the reconcile request the monitor leaves for the reconciler.

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

    async def save(self, agent: str, seq: int, boot_id: str) -> None:
        async with translated(f"save cursor of {agent}"):
            await self._client.hset(
                self._keys.agent_cursor(agent), mapping={"seq": seq, "boot_id": boot_id}
            )

    async def request_reconcile(self, agent: str, now_ms: int, why: str) -> None:
        async with translated(f"request reconcile of {agent}"):
            await self._client.hset(
                self._keys.agent_cursor(agent),
                mapping={"reconcile_requested_at_ms": now_ms, "reconcile_reason": why},
            )
