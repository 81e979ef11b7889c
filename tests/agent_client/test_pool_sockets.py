"""Evicted pooled clients are closed once their in-flight calls end: a control plane that sees
drop after drop keeps a bounded number of sockets (counted on the process, real connections)."""

from __future__ import annotations

import asyncio
import os

import psutil
import pytest

from shepherd.agent_client.breaker import NullBreaker
from shepherd.agent_client.pool import DROP_GRACE_S, MAX_CONNECTIONS_PER_URL, AgentClientPool
from shepherd.agent_client.protocol import Health
from shepherd.errors import AgentConnectionDropped
from tests.agent_client.conftest import Monotonic
from tests.fixtures.servers import dropping_proxy, healthy, serve

BURSTS = 1_000
BURST_SIZE = 3  # with one connection in three dropped, every burst evicts its pooled client


def sockets_to(port: int) -> int:
    """Open TCP sockets of this process whose peer is ``port`` (the client side only)."""
    me = psutil.Process(os.getpid())
    return sum(1 for c in me.net_connections(kind="tcp") if c.raddr and c.raddr.port == port)


async def test_an_evicted_client_is_closed_after_its_last_in_flight_call_not_under_it(
    monotonic: Monotonic,
) -> None:
    pool = AgentClientPool(NullBreaker(), monotonic=monotonic)
    try:
        async with serve(healthy) as served:
            client = pool.client_for("a", served.url, "t")
            await client.health()
            first = pool.pooled(served.url)
            assert first is not None
            poll = asyncio.create_task(client.events(after=0, wait_s=1))
            while served.requests["/v1/events"] < 1:
                await asyncio.sleep(0.01)
            pool.mark_dropped(served.url, first)  # a sibling's call on it just dropped
            assert not first.is_closed and pool.evicted_open == 1
            page = await poll  # the call in flight on the evicted client still completes
            assert page.last_seq == 0
            assert first.is_closed and pool.evicted_open == 0
    finally:
        await pool.aclose()


@pytest.mark.slow
async def test_sockets_stay_bounded_after_a_thousand_drop_bursts(monotonic: Monotonic) -> None:
    pool = AgentClientPool(NullBreaker(), monotonic=monotonic)
    outcomes = {"answered": 0, "dropped": 0}
    try:
        async with serve(healthy) as served, dropping_proxy(served.port, 1 / BURST_SIZE) as proxy:
            client = pool.client_for("a", proxy.url, "t")
            for _ in range(BURSTS):
                results = await asyncio.gather(*(client.health() for _ in range(BURST_SIZE)),
                                               return_exceptions=True)
                for r in results:
                    assert isinstance(r, Health | AgentConnectionDropped), r
                    outcomes["answered" if isinstance(r, Health) else "dropped"] += 1
                monotonic.advance(DROP_GRACE_S)  # the next burst gets a pooled client again
            open_sockets = sockets_to(proxy.port)
            assert proxy.dropped >= BURSTS
    finally:
        await pool.aclose()
    assert outcomes["dropped"] >= BURSTS
    assert open_sockets <= MAX_CONNECTIONS_PER_URL
    assert pool.evicted_open == 0
