"""Agent health on a real redis-server: the outage clock, the fence, every script return code,
the exact keyspace (no TTL: the state lives as long as the agent)."""

from __future__ import annotations

from shepherd.stores.redis.agent_health import AgentHealth, AgentHealthStore
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.redis.keys import Keys
from tests.stores.redis.helpers import ttls_s


async def test_the_first_miss_of_an_outage_stands_until_an_answer(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    health = redis_handle.health
    assert await health.mark_unreachable("a", 1_000) == 1_000  # NEWLY
    assert await health.mark_unreachable("a", 5_000) == 1_000  # ALREADY: the clock keeps running
    assert await health.read(["a", "b"]) == {"a": AgentHealth(1_000, None), "b": AgentHealth()}
    assert await ttls_s(redis_handle) == {keys.agent_health("a"): -1}
    assert await health.mark_reachable("a") == 1_000  # CAME_BACK, with when the outage began
    assert await health.mark_reachable("a") is None  # WAS_REACHABLE
    assert await health.mark_unreachable("a", 9_000) == 9_000  # a new outage, a new clock


async def test_the_fence_is_set_once_survives_an_answer_and_is_lifted_by_unfence(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    health = redis_handle.health
    await health.mark_unreachable("a", 1_000)
    assert await health.fence("a", 61_000) is True
    assert await health.fence("a", 70_000) is False
    assert await health.mark_reachable("a") == 1_000
    assert await health.read(["a"]) == {"a": AgentHealth(None, 61_000)}
    assert await _fenced(health, ["a", "b"]) == {"a"}
    assert await health.unfence("a") is True
    assert await health.unfence("a") is False
    assert await _fenced(health, ["a"]) == set()
    assert await ttls_s(redis_handle) == {}  # an empty hash is no key at all


async def test_restarting_the_outage_clock_counts_from_now(redis_handle: RedisHandle) -> None:
    health = redis_handle.health
    await health.mark_unreachable("a", 1_000)
    await health.restart_outage("a", 50_000)
    assert await health.mark_unreachable("a", 60_000) == 50_000


async def test_deleting_an_agent_deletes_its_health(redis_handle: RedisHandle, keys: Keys) -> None:
    await redis_handle.health.fence("a", 1)
    await redis_handle.health.fence("b", 1)
    await redis_handle.slots.forget_agent("a")
    assert await ttls_s(redis_handle) == {keys.agent_health("b"): -1}


async def _fenced(health: AgentHealthStore, agents: list[str]) -> set[str]:
    return {name for name, h in (await health.read(agents)).items() if h.fenced}
