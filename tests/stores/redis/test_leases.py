"""Leases: only the owner renews or releases; ``hold`` heartbeats and reports a loss."""

from __future__ import annotations

import asyncio

import pytest

from shepherd.errors import InstanceMismatch
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.redis.instance import mirror_instance_id
from shepherd.stores.redis.keys import Keys


async def test_a_lease_is_held_by_one_owner_at_a_time(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    leases, key = redis_handle.leases, keys.controller_lease("scheduler")
    assert await leases.acquire(key, "a", 10_000)
    assert await leases.acquire(key, "a", 10_000)  # ours already: refreshed
    assert not await leases.acquire(key, "b", 10_000)
    assert not await leases.renew(key, "b", 10_000)
    assert not await leases.release(key, "b")
    assert await leases.owner(key) == "a"
    assert await leases.renew(key, "a", 20_000)
    assert 10_000 < await redis_handle.client.pttl(key) <= 20_000
    assert await leases.release(key, "a")
    assert await leases.owner(key) is None
    assert await leases.acquire(key, "b", 10_000)


async def test_an_expired_lease_can_be_taken_and_the_old_owner_cannot_renew(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    leases, key = redis_handle.leases, keys.finalize_lease("e1")
    assert await leases.acquire(key, "a", 50)
    await asyncio.sleep(0.1)
    assert await leases.acquire(key, "b", 10_000)
    assert not await leases.renew(key, "a", 10_000)


async def test_hold_keeps_the_lease_past_its_ttl_and_releases_it(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    leases, key = redis_handle.leases, keys.finalize_lease("e2")
    async with leases.hold(key, "a", 150) as held:
        assert held
        await asyncio.sleep(0.4)
        assert await leases.owner(key) == "a"
        assert not held.lost.is_set()
    assert await leases.owner(key) is None


async def test_hold_reports_a_stolen_lease_and_a_second_holder_is_refused(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    leases, key = redis_handle.leases, keys.finalize_lease("e3")
    async with leases.hold(key, "a", 150) as held:
        async with leases.hold(key, "b", 150) as other:
            assert not other
        await redis_handle.client.set(key, "thief")
        await asyncio.wait_for(held.lost.wait(), 2)
    assert await leases.owner(key) == "thief"


async def test_the_instance_id_is_mirrored_once_and_a_mismatch_is_refused(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    await mirror_instance_id(redis_handle.client, keys, "aaaa")
    await mirror_instance_id(redis_handle.client, keys, "aaaa")
    with pytest.raises(InstanceMismatch, match=r"'aaaa'.*'bbbb'"):
        await mirror_instance_id(redis_handle.client, keys, "bbbb")
