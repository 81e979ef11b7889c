"""The canary's view of Redis: slots, ticks, health, instance, in a few pipelined round trips.

``read`` takes the agents to look at (live ones for slots and health, deleted ones for leftover
keys) and the controllers whose ticks matter, and returns plain values. One SCAN finds every slot
hash whichever agent it names (a hash of an unknown agent is a finding too). Never writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys

GONE = -2  # TTL's answer for a key that no longer exists


@dataclass(frozen=True, slots=True)
class RedisSlotHash:
    agent: str
    execution_id: str
    ttl_s: int
    timeout_s: int | None
    acquired_at_ms: int | None


@dataclass(frozen=True, slots=True)
class RedisFacts:
    slot_members: dict[str, dict[str, int]]
    slot_hashes: tuple[RedisSlotHash, ...]
    controller_ticks_ms: dict[str, int | None]
    drain_tick_ms: int | None
    instance_id: str | None
    unreachable_since_ms: dict[str, int]
    fenced: frozenset[str]
    leftover_keys: dict[str, tuple[str, ...]]  # deleted agent -> its keys still present


class CanaryView:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    async def read(
        self, live: Sequence[str], deleted: Sequence[str], controllers: Sequence[str]
    ) -> RedisFacts:
        async with translated("read the canary's view of Redis"):
            found = [k async for k in self._client.scan_iter(
                match=self._keys.all_slots_pattern(), count=1000)]
            parsed = [p for k in found if (p := self._keys.parse_slot(str(k))) is not None]
            async with self._client.pipeline(transaction=False) as pipe:
                for agent in live:
                    pipe.zrange(self._keys.slots(agent), 0, -1, withscores=True)
                    pipe.hmget(self._keys.agent_health(agent), "unreachable_since_ms",
                               "lost_at_ms")
                for agent, eid in parsed:
                    pipe.ttl(self._keys.slot(agent, eid))
                    pipe.hmget(self._keys.slot(agent, eid), "timeout_s", "acquired_at_ms")
                for name in controllers:
                    pipe.get(self._keys.controller_tick_at(name))
                pipe.get(self._keys.drain_tick_at())
                pipe.get(self._keys.instance())
                for agent in deleted:
                    for key in self._keys.agent_keys(agent):
                        pipe.exists(key)
                replies = list(await pipe.execute())
        return self._facts(replies, live, deleted, controllers, parsed)

    def _facts(
        self, replies: list[Any], live: Sequence[str], deleted: Sequence[str],
        controllers: Sequence[str], parsed: list[tuple[str, str]],
    ) -> RedisFacts:
        it = iter(replies)
        members: dict[str, dict[str, int]] = {}
        unreachable: dict[str, int] = {}
        fenced: set[str] = set()
        for agent in live:
            members[agent] = {str(m): int(score) for m, score in next(it)}
            since, lost = next(it)
            if since is not None:
                unreachable[agent] = int(since)
            if lost is not None:
                fenced.add(agent)
        hashes = []
        for agent, eid in parsed:
            ttl, (timeout, acquired) = next(it), next(it)
            if int(ttl) == GONE:  # released between the SCAN and the read: not a slot any more
                continue
            hashes.append(RedisSlotHash(agent, eid, int(ttl), _int(timeout), _int(acquired)))
        ticks = {name: _int(next(it)) for name in controllers}
        drain, instance = _int(next(it)), next(it)
        leftovers: dict[str, tuple[str, ...]] = {}
        for agent in deleted:
            present = [k for k in self._keys.agent_keys(agent) if next(it)]
            leftovers[agent] = tuple(present)
        return RedisFacts(members, tuple(hashes), ticks, drain,
                          None if instance is None else str(instance), unreachable,
                          frozenset(fenced), leftovers)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
