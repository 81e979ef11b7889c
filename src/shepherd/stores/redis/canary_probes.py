"""Deliberate, reversible damage to Redis for ``canary selftest``: each call plants one fault the
canary must see, and its twin removes it. Used only by the self-test, against a live fleet.

Every fault stays away from real work: planted slots name an execution id that no row carries
(``selftest-...``), and the instance id and controller tick are put back to the values read
before. Must not: touch a slot, lease or key of a real execution.
"""

from __future__ import annotations

from redis.asyncio import Redis

from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys


class CanaryProbes:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    async def plant_slot(
        self, agent: str, execution_id: str, acquired_at_ms: int, timeout_s: int, ttl_s: int,
        *, member: bool = True, hash_: bool = True,
    ) -> None:
        """A slot member and/or hash for an execution that does not exist."""
        async with translated("plant a self-test slot"), \
                self._client.pipeline(transaction=True) as pipe:
            if member:
                pipe.zadd(self._keys.slots(agent), {execution_id: acquired_at_ms})
            if hash_:
                key = self._keys.slot(agent, execution_id)
                pipe.hset(key, mapping={"acquired_at_ms": acquired_at_ms,
                                        "timeout_s": timeout_s, "holder": "canary-selftest"})
                if ttl_s > 0:
                    pipe.expire(key, ttl_s)
            await pipe.execute()

    async def remove_slot(self, agent: str, execution_id: str) -> None:
        async with translated("remove a self-test slot"), \
                self._client.pipeline(transaction=True) as pipe:
            pipe.zrem(self._keys.slots(agent), execution_id)
            pipe.delete(self._keys.slot(agent, execution_id))
            await pipe.execute()

    async def swap_instance(self, value: str | None) -> str | None:
        """Set the mirrored instance id (None deletes it); returns the value it replaced."""
        async with translated("swap the instance id"):
            before = await self._client.get(self._keys.instance())
            if value is None:
                await self._client.delete(self._keys.instance())
            else:
                await self._client.set(self._keys.instance(), value)
        return None if before is None else str(before)

    async def swap_tick(self, controller: str, tick_ms: int | None) -> int | None:
        """Set a controller's last tick (None deletes it); returns the value it replaced."""
        key = self._keys.controller_tick_at(controller)
        async with translated("swap a controller tick"):
            before = await self._client.get(key)
            if tick_ms is None:
                await self._client.delete(key)
            else:
                await self._client.set(key, tick_ms)
        return None if before is None else int(before)
