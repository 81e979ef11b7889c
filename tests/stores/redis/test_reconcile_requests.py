"""Reconcile requests on a real redis-server: kept on the cursor hash, announced to listeners,
consumed once; every script return code; the keyspace holds only the cursor hash."""

from __future__ import annotations

import asyncio

from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.redis.keys import Keys
from shepherd.stores.redis.reconcile import ReconcileRequest, RequestResult
from tests.stores.redis.helpers import ttls_s


async def test_a_request_nobody_hears_is_stored_and_taken_once(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    requests = redis_handle.reconcile
    await redis_handle.client.hset(keys.agent_cursor("a"), mapping={"seq": 7, "boot_id": "b1"})
    assert await requests.request("a", "runtime boot_id changed", 1_000) is RequestResult.STORED
    assert await ttls_s(redis_handle) == {keys.agent_cursor("a"): -1}
    assert await requests.take("a") == ReconcileRequest("a", 1_000, "runtime boot_id changed")
    assert await requests.take("a") is None  # NONE: consumed
    assert await redis_handle.client.hgetall(keys.agent_cursor("a")) == {
        "seq": "7", "boot_id": "b1"}  # the cursor itself is untouched


async def test_a_later_request_replaces_an_earlier_one_not_yet_taken(
    redis_handle: RedisHandle,
) -> None:
    requests = redis_handle.reconcile
    await requests.request("a", "stream broken", 1_000)
    await requests.request("a", "agent reachable again", 2_000)
    assert await requests.take("a") == ReconcileRequest("a", 2_000, "agent reachable again")


async def test_a_listener_hears_every_request_with_the_agents_name(
    redis_handle: RedisHandle,
) -> None:
    heard: list[str] = []
    listening = asyncio.create_task(redis_handle.reconcile.listen(heard.append))
    try:
        for _ in range(100):
            if await redis_handle.reconcile.request("a", "x", 1) is RequestResult.DELIVERED:
                break
            await asyncio.sleep(0.01)  # until the subscription is in place
        assert await redis_handle.reconcile.request("b", "y", 2) is RequestResult.DELIVERED
        for _ in range(100):
            if "b" in heard:
                break
            await asyncio.sleep(0.01)
        assert heard[-2:] == ["a", "b"]
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
    assert await redis_handle.reconcile.request("c", "z", 3) is RequestResult.STORED


async def test_the_last_report_of_a_controller_reads_back_or_is_none(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    reports = redis_handle.reports
    assert await reports.last("watchdog") is None
    await redis_handle.client.set(keys.controller_report("watchdog"), '{"tick_at_ms": 5}')
    assert await reports.last("watchdog") == {"tick_at_ms": 5}
    await redis_handle.client.set(keys.controller_report("watchdog"), "not json")
    assert await reports.last("watchdog") is None
