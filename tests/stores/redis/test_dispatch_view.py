"""A dispatcher pass's view on a real redis-server: the same epoch reading, health and slot
counts as each store reads on its own, in one trip, and nothing written."""

from __future__ import annotations

from shepherd.stores.redis.agent_health import AgentHealth
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.redis.keys import Keys
from tests.stores.redis.helpers import ttls_s


async def test_the_view_reads_what_each_store_reads_and_writes_nothing(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    reading = await redis_handle.epoch.read()
    await redis_handle.epoch.seal(reading.run_id)
    for eid in ("e1", "e2"):
        await redis_handle.slots.acquire("a", eid, max_parallel=4, timeout_s=60, now_ms=1,
                                         holder="t", epoch=reading.run_id)
    await redis_handle.health.mark_unreachable("b", 1_000)
    await redis_handle.health.fence("b", 2_000)
    before = await ttls_s(redis_handle)
    view = await redis_handle.dispatch_view(["a", "b", "c"])
    assert view.epoch == await redis_handle.epoch.read()
    assert view.epoch.epoch == reading.run_id
    assert view.held == {"a": 2, "b": 0, "c": 0}
    assert view.health == {"a": AgentHealth(), "b": AgentHealth(1_000, 2_000),
                           "c": AgentHealth()}
    assert view.health["b"].fenced
    assert await ttls_s(redis_handle) == before
    empty = await redis_handle.dispatch_view([])
    assert (empty.health, empty.held, empty.epoch) == ({}, {}, view.epoch)
