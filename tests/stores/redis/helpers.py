"""Helpers shared by the Redis store tests: the exact keyspace, with TTLs."""

from __future__ import annotations

from typing import Any

from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.redis.slots import AcquireResult


async def keyspace(r: RedisHandle) -> set[str]:
    """Every key under the handle's prefix (SCAN of ``keys.all_pattern()``)."""
    return {str(k) async for k in r.client.scan_iter(match=r.keys.all_pattern())}


async def ttls_s(r: RedisHandle) -> dict[str, int]:
    """Every key under the prefix with its TTL in seconds (-1: none)."""
    return {k: int(await r.client.ttl(k)) for k in await keyspace(r)}


async def seal_epoch(r: RedisHandle) -> str:
    """What slot recovery does on a fresh Redis: seal the epoch with the server's run_id. Slots
    can only be acquired with it; returns it."""
    reading = await r.epoch.read()
    await r.epoch.seal(reading.run_id)
    return reading.run_id


async def take_slot(r: RedisHandle, agent: str, execution_id: str, **fields: Any) -> AcquireResult:
    """Acquire a slot as the dispatcher does: on a sealed Redis (sealed here if it is not), with
    its epoch."""
    epoch = await r.client.get(r.keys.epoch()) or await seal_epoch(r)
    return await r.slots.acquire(agent, execution_id, epoch=str(epoch), **fields)
