"""What the fleet page shows of each agent from Redis: slots in use, when its runtime last
answered, when it booted.

Everything is read in one pipelined round trip however many agents there are, so the fleet
page's Redis cost does not grow in round trips with the fleet. The presence fields live on the
monitor's cursor hash (``agent:{agent}:cursor``: ``seen_at_ms``, ``booted_at_ms``, ``boot_id``),
written by the monitor.

Must not: write anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys

PRESENCE_FIELDS = ("seen_at_ms", "booted_at_ms", "boot_id")


@dataclass(frozen=True, slots=True)
class RuntimePresence:
    slots_in_use: int
    seen_at_ms: int | None
    booted_at_ms: int | None
    boot_id: str | None


class PresenceReader:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    async def read(self, agents: Sequence[str]) -> dict[str, RuntimePresence]:
        if not agents:
            return {}
        async with translated("read presence"), self._client.pipeline(transaction=False) as pipe:
            for agent in agents:
                pipe.zcard(self._keys.slots(agent))
                pipe.hmget(self._keys.agent_cursor(agent), list(PRESENCE_FIELDS))
            replies = await pipe.execute()
        found: dict[str, RuntimePresence] = {}
        for i, agent in enumerate(agents):
            slots, (seen, booted, boot_id) = replies[2 * i], replies[2 * i + 1]
            found[agent] = RuntimePresence(int(slots), _ms(seen), _ms(booted), boot_id)
        return found


def _ms(raw: str | None) -> int | None:
    return int(raw) if raw is not None and raw.isdigit() else None
