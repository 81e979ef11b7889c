"""Control-plane replicas announcing themselves: one short-lived presence key per replica.

Each replica refreshes ``replica:{id}`` (PX TTL) while it runs and deletes it when it stops; a
replica that dies disappears when its key expires. ``live`` lists the ids whose key exists. The
breaker's quorum guard reads the count: with more than one live replica, one replica alone cannot
open a circuit.

Must not: decide anything from the count (``core.circuit`` and the circuit scripts do).
"""

from __future__ import annotations

from redis.asyncio import Redis

from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys

# SCAN batch: the whole keyspace is walked, so take big steps.
SCAN_COUNT = 1000


class ReplicaStore:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    async def announce(self, replica_id: str, now_ms: int, ttl_ms: int) -> None:
        """Say this replica is alive for the next ``ttl_ms``."""
        async with translated("announce replica"):
            await self._client.set(self._keys.replica(replica_id), now_ms, px=ttl_ms)

    async def withdraw(self, replica_id: str) -> None:
        async with translated("withdraw replica"):
            await self._client.delete(self._keys.replica(replica_id))

    async def live(self) -> list[str]:
        """Ids of the replicas whose presence key has not expired."""
        prefix = self._keys.replica("")
        async with translated("list replicas"):
            found = [str(k) async for k in self._client.scan_iter(
                match=self._keys.replica_pattern(), count=SCAN_COUNT)]
        return sorted(k.removeprefix(prefix) for k in found)
