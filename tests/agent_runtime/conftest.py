"""A real runtime process and a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from shepherd.agent_client.client import AgentClient
from shepherd.agent_client.pool import AgentClientPool
from shepherd.app.runtimes import LocalRuntime
from tests.fixtures.runtimes import AGENT_TOKEN, StartRuntime

Connect = Callable[..., Awaitable[tuple[LocalRuntime, AgentClient]]]


@pytest.fixture
async def pool() -> AsyncIterator[AgentClientPool]:
    clients = AgentClientPool()
    yield clients
    await clients.aclose()


@pytest.fixture
def runtime_client(start_runtime: StartRuntime, pool: AgentClientPool) -> Connect:
    async def connect(command: list[str], name: str = "rt") -> tuple[LocalRuntime, AgentClient]:
        runtime = await start_runtime(name, command)
        return runtime, pool.client_for(name, runtime.url, AGENT_TOKEN)

    return connect
