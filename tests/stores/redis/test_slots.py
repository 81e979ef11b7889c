"""Slot scripts on a real redis-server: every return code, TTLs, no overbooking, exact keyspace."""

from __future__ import annotations

import asyncio

import pytest

from shepherd.core.timeouts import slot_ttl_s
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.redis.keys import Keys
from shepherd.stores.redis.slots import AcquireResult, SlotRequest
from tests.stores.redis.helpers import keyspace, seal_epoch, ttls_s


@pytest.fixture(autouse=True)
async def epoch(redis_handle: RedisHandle) -> str:
    """Every test starts on a sealed Redis, as the dispatcher leaves it; the key is listed in
    every keyspace below."""
    return await seal_epoch(redis_handle)


async def acquire(r: RedisHandle, eid: str, max_parallel: int = 2, timeout_s: int = 60,
                  agent: str = "a", now_ms: int = 1_000) -> AcquireResult:
    epoch = await r.client.get(r.keys.epoch()) or "unsealed"
    return await r.slots.acquire(agent, eid, max_parallel=max_parallel, timeout_s=timeout_s,
                                 now_ms=now_ms, holder="test", epoch=epoch)


async def test_acquire_returns_acquired_then_already_held_then_full(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    r = redis_handle
    assert await acquire(r, "e1") is AcquireResult.ACQUIRED
    assert await acquire(r, "e1", now_ms=9_000) is AcquireResult.ALREADY_HELD
    assert await acquire(r, "e2") is AcquireResult.ACQUIRED
    assert await acquire(r, "e3") is AcquireResult.FULL
    assert await keyspace(r) == {
        keys.epoch(), keys.slots("a"), keys.slot("a", "e1"), keys.slot("a", "e2")
    }
    assert await r.slots.holders("a") == {"e1": 1_000, "e2": 1_000}  # ALREADY_HELD kept its score
    assert await r.slots.count("a") == 2


async def test_full_counts_only_the_agents_own_slots(redis_handle: RedisHandle) -> None:
    r = redis_handle
    assert await acquire(r, "e1", max_parallel=1) is AcquireResult.ACQUIRED
    assert await acquire(r, "e2", max_parallel=1) is AcquireResult.FULL
    assert await acquire(r, "e2", max_parallel=1, agent="b") is AcquireResult.ACQUIRED


async def test_max_parallel_zero_is_always_full_and_writes_nothing(
    redis_handle: RedisHandle,
) -> None:
    assert await acquire(redis_handle, "e1", max_parallel=0) is AcquireResult.FULL
    assert await keyspace(redis_handle) == {redis_handle.keys.epoch()}


async def test_the_slot_hash_lives_for_timeout_plus_300_seconds(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    r = redis_handle
    await acquire(r, "e1", timeout_s=900)
    assert slot_ttl_s(900) == 1200
    assert await ttls_s(r) == {keys.epoch(): -1, keys.slots("a"): -1, keys.slot("a", "e1"): 1200}
    assert await r.client.hgetall(keys.slot("a", "e1")) == {
        "acquired_at_ms": "1000", "timeout_s": "900", "holder": "test"
    }


async def test_release_removes_only_the_named_slot_and_says_so(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    r = redis_handle
    await acquire(r, "e1")
    await acquire(r, "e2")
    assert await r.slots.release("a", "e1") is True
    assert await keyspace(r) == {keys.epoch(), keys.slots("a"), keys.slot("a", "e2")}
    assert await r.slots.release("a", "e1") is False
    assert await r.slots.release("a", "e2") is True
    assert await keyspace(r) == {keys.epoch(), keys.epoch()}  # an empty ZSET is no key at all


async def test_a_release_by_a_non_holder_changes_nothing(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    r = redis_handle
    await acquire(r, "e1")
    # a stray hash without a member (as a broken writer might leave) is not touched either
    await r.client.hset(keys.slot("a", "ghost"), "holder", "x")
    hashes = (keys.slot("a", "e1"), keys.slot("a", "ghost"))
    before = {k: await r.client.hgetall(k) for k in hashes}
    assert await r.slots.release("a", "ghost") is False
    assert await r.slots.release("b", "e1") is False
    assert {k: await r.client.hgetall(k) for k in hashes} == before
    assert await keyspace(r) == {keys.epoch(), keys.slots("a"), *hashes}
    assert await r.slots.holders("a") == {"e1": 1_000}


async def test_fifty_concurrent_acquirers_never_overbook(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    r = redis_handle
    results = await asyncio.gather(*(acquire(r, f"e{i}", max_parallel=3) for i in range(50)))
    assert results.count(AcquireResult.ACQUIRED) == 3
    assert results.count(AcquireResult.FULL) == 47
    winners = [f"e{i}" for i, res in enumerate(results) if res is AcquireResult.ACQUIRED]
    assert set(await r.slots.holders("a")) == set(winners)
    assert await keyspace(r) == {
        keys.epoch(), keys.slots("a"), *(keys.slot("a", e) for e in winners)
    }


async def test_reclaim_candidates_are_expired_old_or_future_and_nothing_is_removed(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    r = redis_handle
    await acquire(r, "old", max_parallel=9, now_ms=100)
    await acquire(r, "edge", max_parallel=9, now_ms=1_000)
    await acquire(r, "fresh", max_parallel=9, now_ms=5_000)
    await acquire(r, "expired", max_parallel=9, now_ms=5_000)
    await acquire(r, "future-edge", max_parallel=9, now_ms=8_000)
    await acquire(r, "future", max_parallel=9, now_ms=8_001)
    await r.client.delete(keys.slot("a", "expired"))
    found = await r.slots.reclaim_candidates("a", older_than_ms=1_000, newer_than_ms=8_000)
    assert sorted(found) == ["expired", "future", "old"]
    assert await keyspace(r) == {keys.epoch(),
        keys.slots("a"), *(keys.slot("a", e) for e in ("old", "edge", "fresh", "future-edge",
                                                        "future"))
    }
    assert await r.slots.count("a") == 6


async def test_reclaim_candidates_of_an_agent_without_slots_are_none(
    redis_handle: RedisHandle,
) -> None:
    assert await redis_handle.slots.reclaim_candidates(
        "a", older_than_ms=10**15, newer_than_ms=10**15
    ) == []
    assert await keyspace(redis_handle) == {redis_handle.keys.epoch()}


async def test_forgetting_an_agent_deletes_all_its_keys_and_only_its_keys(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    r = redis_handle
    await acquire(r, "e1")
    await acquire(r, "e9", agent="other")
    await r.client.hset(keys.agent_cursor("a"), mapping={"seq": 3, "boot_id": "b"})
    await r.client.hset(keys.circuit("a"), mapping={"state": "open"})
    await r.leases.acquire(keys.monitor_lease("a"), "me", 10_000)
    await r.client.hset(keys.slot("a", "orphan"), "holder", "x")  # a hash without its member
    await r.slots.forget_agent("a")
    assert await keyspace(r) == {keys.epoch(), keys.slots("other"), keys.slot("other", "e9")}


async def test_an_orphan_hash_is_removed_and_a_held_or_missing_one_is_not(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    r = redis_handle
    await acquire(r, "held")
    await r.client.hset(keys.slot("a", "orphan"), "holder", "x")  # no member, no TTL
    assert sorted(await r.slots.hashes()) == [("a", "held"), ("a", "orphan")]
    assert await r.slots.release_orphan_hash("a", "orphan") is True  # 1 REMOVED
    assert await r.slots.release_orphan_hash("a", "held") is False  # 0 NOT_ORPHAN: member there
    assert await r.slots.release_orphan_hash("a", "orphan") is False  # 0 NOT_ORPHAN: gone
    assert await ttls_s(r) == {
        keys.epoch(): -1, keys.slots("a"): -1, keys.slot("a", "held"): 60 + 300
    }


async def test_the_hash_scan_finds_every_agents_slot_hashes_and_nothing_else(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    r = redis_handle
    await acquire(r, "e1")
    await acquire(r, "e2", agent="b.c-d")
    await r.client.hset(keys.agent_cursor("a"), "seq", 1)
    assert sorted(await r.slots.hashes()) == [("a", "e1"), ("b.c-d", "e2")]
    assert keys.parse_slot(keys.slots("a")) is None
    assert keys.parse_slot(keys.agent_cursor("a")) is None


async def test_restore_puts_back_a_lost_slot_without_a_capacity_check_and_only_once(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    r = redis_handle
    assert await acquire(r, "e1", max_parallel=1) is AcquireResult.ACQUIRED
    restored = await r.slots.restore("a", "e2", acquired_at_ms=700, timeout_s=900, holder="m")
    assert restored is True  # 1 RESTORED, though max_parallel (1) is already used
    again = await r.slots.restore("a", "e2", acquired_at_ms=999, timeout_s=5, holder="m")
    assert again is False  # 0 PRESENT: nothing changed
    assert await r.slots.holders("a") == {"e1": 1_000, "e2": 700}
    assert await ttls_s(r) == {keys.epoch(): -1, keys.slots("a"): -1, keys.slot("a", "e1"): 360,
                               keys.slot("a", "e2"): slot_ttl_s(900)}
    assert await r.client.hgetall(keys.slot("a", "e2")) == {
        "acquired_at_ms": "700", "timeout_s": "900", "holder": "m"
    }
    assert await acquire(r, "e3", max_parallel=2) is AcquireResult.FULL


async def test_acquire_refuses_a_stale_epoch_and_writes_nothing(
    redis_handle: RedisHandle, keys: Keys, epoch: str
) -> None:
    r = redis_handle
    args = {"max_parallel": 2, "timeout_s": 60, "now_ms": 1, "holder": "t"}
    assert await r.slots.acquire("a", "e1", **args, epoch="another-server") is (
        AcquireResult.STALE_EPOCH)
    await r.client.flushall()  # a flush takes the epoch with it
    assert await r.slots.acquire("a", "e1", **args, epoch=epoch) is AcquireResult.STALE_EPOCH
    assert await keyspace(r) == set()
    await seal_epoch(r)
    assert await r.slots.acquire("a", "e1", **args, epoch=epoch) is AcquireResult.ACQUIRED


async def test_a_pass_acquires_in_order_until_full_in_one_call(
    redis_handle: RedisHandle, keys: Keys, epoch: str
) -> None:
    r = redis_handle
    assert await acquire(r, "held", max_parallel=3) is AcquireResult.ACQUIRED
    asks = [SlotRequest("e1", 60), SlotRequest("held", 60), SlotRequest("e2", 900),
            SlotRequest("e3", 60)]
    assert await r.slots.acquire_many("a", asks, max_parallel=3, now_ms=5, holder="d",
                                      epoch=epoch) == [
        AcquireResult.ACQUIRED, AcquireResult.ALREADY_HELD, AcquireResult.ACQUIRED,
        AcquireResult.FULL]
    assert await r.slots.holders("a") == {"held": 1_000, "e1": 5, "e2": 5}
    ttl = await ttls_s(r)
    assert (ttl[keys.slot("a", "e1")], ttl[keys.slot("a", "e2")]) == (
        slot_ttl_s(60), slot_ttl_s(900))
    assert await r.slots.acquire_many("a", asks, max_parallel=9, now_ms=6, holder="d",
                                      epoch="another-server") == [AcquireResult.STALE_EPOCH] * 4
    assert await r.slots.release_many("a", ["e1", "ghost", "e2", "e1"]) == [
        True, False, True, False]
    assert await keyspace(r) == {keys.epoch(), keys.slots("a"), keys.slot("a", "held")}
