"""The fleet breaker on a real redis-server, and a pool whose drop-grace clock tests move."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shepherd.agent_client.fleet_breaker import RedisBreaker
from shepherd.agent_client.pool import AgentClientPool
from shepherd.core.clock import ManualClock
from shepherd.stores.redis.connection import RedisHandle
from shepherd.telemetry import Telemetry


class Monotonic:
    """A monotonic clock for the pool's drop-grace windows that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def monotonic() -> Monotonic:
    return Monotonic()


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


@pytest.fixture
def fleet_breaker(
    redis_handle: RedisHandle, clock: ManualClock, telemetry: Telemetry
) -> RedisBreaker:
    return RedisBreaker(redis_handle.circuits, redis_handle.replicas, clock, replica="r1",
                        telemetry=telemetry)


@pytest.fixture
async def breaker_pool(
    fleet_breaker: RedisBreaker, monotonic: Monotonic
) -> AsyncIterator[AgentClientPool]:
    pool = AgentClientPool(fleet_breaker, monotonic=monotonic)
    yield pool
    await pool.aclose()
