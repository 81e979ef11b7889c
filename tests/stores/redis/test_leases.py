"""Leases on a real redis-server: owner-only renew and release, expiry, the ``hold`` heartbeat."""

from __future__ import annotations

import asyncio

import pytest

from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.redis.keys import Keys
from tests.stores.redis.helpers import keyspace


async def test_acquire_takes_a_free_lease_and_refuses_a_held_one_even_to_its_owner(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    leases, key = redis_handle.leases, keys.controller_lease("scheduler")
    assert await leases.acquire(key, "a", 10_000) is True
    assert await leases.acquire(key, "b", 10_000) is False
    assert await leases.acquire(key, "a", 10_000) is False
    assert await leases.owner(key) == "a"
    assert 0 < await redis_handle.client.pttl(key) <= 10_000
    assert await keyspace(redis_handle) == {key}


async def test_renew_extends_only_for_the_owner(redis_handle: RedisHandle, keys: Keys) -> None:
    leases, key = redis_handle.leases, keys.monitor_lease("alpha")
    await leases.acquire(key, "a", 10_000)
    assert await leases.renew(key, "b", 60_000) is False
    assert await redis_handle.client.pttl(key) <= 10_000
    assert await leases.renew(key, "a", 60_000) is True
    assert 10_000 < await redis_handle.client.pttl(key) <= 60_000
    assert await leases.owner(key) == "a"


async def test_renewing_a_missing_lease_does_not_create_it(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    key = keys.monitor_lease("alpha")
    assert await redis_handle.leases.renew(key, "a", 10_000) is False
    assert await keyspace(redis_handle) == set()


async def test_release_deletes_only_for_the_owner(redis_handle: RedisHandle, keys: Keys) -> None:
    leases, key = redis_handle.leases, keys.finalize_lease("e1")
    await leases.acquire(key, "a", 10_000)
    assert await leases.release(key, "b") is False
    assert await keyspace(redis_handle) == {key}
    assert await leases.release(key, "a") is True
    assert await leases.release(key, "a") is False
    assert await leases.owner(key) is None
    assert await keyspace(redis_handle) == set()


async def test_an_expired_lease_can_be_taken_and_the_old_owner_can_neither_renew_nor_release(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    leases, key = redis_handle.leases, keys.finalize_lease("e1")
    assert await leases.acquire(key, "a", 30)
    await asyncio.sleep(0.08)
    assert await leases.owner(key) is None
    assert await leases.acquire(key, "b", 10_000)
    assert await leases.renew(key, "a", 10_000) is False
    assert await leases.release(key, "a") is False
    assert await leases.owner(key) == "b"


async def test_hold_keeps_the_lease_past_its_ttl_and_releases_it_on_exit(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    leases, key = redis_handle.leases, keys.finalize_lease("e2")
    async with leases.hold(key, "a", 90) as held:
        assert held is True
        await asyncio.sleep(0.3)  # more than three TTLs
        assert await leases.owner(key) == "a"
    assert await leases.owner(key) is None
    assert await keyspace(redis_handle) == set()


async def test_hold_yields_false_for_a_held_lease_and_leaves_it_alone(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    leases, key = redis_handle.leases, keys.finalize_lease("e3")
    async with leases.hold(key, "a", 10_000) as first:
        async with leases.hold(key, "a", 10_000) as second:
            assert (first, second) == (True, False)
        assert await leases.owner(key) == "a"
    assert await leases.owner(key) is None


async def test_hold_does_not_release_a_lease_taken_by_another_after_it_was_lost(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    leases, key = redis_handle.leases, keys.finalize_lease("e4")
    async with leases.hold(key, "a", 10_000):
        await redis_handle.client.set(key, "thief")
    assert await leases.owner(key) == "thief"


async def test_hold_stops_its_heartbeat_when_the_body_raises(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    leases, key = redis_handle.leases, keys.finalize_lease("e5")
    before = asyncio.all_tasks()
    with pytest.raises(ValueError, match="body"):
        async with leases.hold(key, "a", 10_000):
            assert len(asyncio.all_tasks() - before) == 1  # the heartbeat
            raise ValueError("body")
    assert asyncio.all_tasks() == before
    assert await leases.owner(key) is None


async def test_cancelling_the_holder_propagates_and_leaves_no_heartbeat(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    leases, key = redis_handle.leases, keys.finalize_lease("e6")
    inside = asyncio.Event()

    async def work() -> None:
        async with leases.hold(key, "a", 10_000):
            inside.set()
            await asyncio.Event().wait()

    before = asyncio.all_tasks()
    task = asyncio.create_task(work())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert asyncio.all_tasks() == before
    assert await leases.owner(key) is None


async def test_read_gives_each_owner_and_an_unreadable_key_fails_alone(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    leases = redis_handle.leases
    held, free, broken = (keys.finalize_lease(e) for e in ("e1", "e2", "e3"))
    await leases.acquire(held, "a", 10_000)
    await redis_handle.client.hset(broken, "not", "a lease")  # a key of the wrong type
    found = await leases.read([held, free, broken])
    assert [(f.owner, f.error) for f in found[:2]] == [("a", None), (None, None)]
    assert found[2].owner is None and found[2].error is not None
    assert "WRONGTYPE" in found[2].error
    assert await leases.read([]) == []


async def test_held_lists_the_finalize_leases_with_owner_and_ttl_and_nothing_else(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    leases = redis_handle.leases
    await leases.acquire(keys.finalize_lease("e1"), "a", 10_000)
    await leases.acquire(keys.finalize_lease("e2"), "b", 20_000)
    await leases.acquire(keys.monitor_lease("alpha"), "a", 10_000)
    await redis_handle.client.hset(keys.finalize_lease("e3"), "not", "a lease")
    found = await leases.held(keys.finalize_lease_pattern())
    assert [(keys.parse_finalize_lease(h.key), h.owner) for h in found] == [("e1", "a"),
                                                                           ("e2", "b")]
    assert 0 < found[0].ttl_ms <= 10_000 and 10_000 < found[1].ttl_ms <= 20_000
    assert keys.parse_finalize_lease(keys.monitor_lease("alpha")) is None
    assert keys.parse_finalize_lease(keys.finalize_lease("")) is None
    await redis_handle.client.flushall()
    assert await leases.held(keys.finalize_lease_pattern()) == []
