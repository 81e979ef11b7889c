"""Helpers shared by the Redis store tests: the exact keyspace, with TTLs."""

from __future__ import annotations

from shepherd.stores.redis.connection import RedisHandle


async def keyspace(r: RedisHandle) -> set[str]:
    """Every key under the handle's prefix (SCAN of ``keys.all_pattern()``)."""
    return {str(k) async for k in r.client.scan_iter(match=r.keys.all_pattern())}


async def ttls_s(r: RedisHandle) -> dict[str, int]:
    """Every key under the prefix with its TTL in seconds (-1: none)."""
    return {k: int(await r.client.ttl(k)) for k in await keyspace(r)}
