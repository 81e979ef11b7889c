"""A real runtime process and a client for it; or the runtime's API in this process (ASGI
transport, real children), for tests that need its internals or short intervals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shepherd.agent_client.client import AgentClient
from shepherd.agent_client.pool import AgentClientPool
from shepherd.agent_runtime.app import RuntimeState, create_runtime_app
from shepherd.agent_runtime.config import RuntimeConfig
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


TOKEN = "in-process-token"


@dataclass
class Api:
    http: httpx.AsyncClient
    state: RuntimeState
    config: RuntimeConfig

    async def start(self, eid: str, text: str = "", timeout_s: int = 30) -> httpx.Response:
        body = {"execution_id": eid, "input": text, "timeout_s": timeout_s}
        return await self.http.post("/v1/executions", json=body)

    async def finished(self, eid: str) -> dict[str, Any]:
        state: dict[str, Any] = (await self.http.get(f"/v1/executions/{eid}?wait=10")).json()
        assert state["state"] == "finished"
        return state


MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api(tmp_path: Path) -> AsyncIterator[MakeApi]:
    made: list[Api] = []

    async def make(command: list[str], token: str | None = TOKEN, **options: Any) -> Api:
        config = RuntimeConfig(name="inproc", command=tuple(command), token=token,
                               data_dir=tmp_path / f"agent{len(made)}", kill_grace_s=0.5,
                               **options)
        app = create_runtime_app(config)
        state: RuntimeState = app.state.runtime
        await state.registry.recover()
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rt",
                                 headers={"Authorization": f"Bearer {state.token}"})
        made.append(Api(http, state, config))
        return made[-1]

    yield make
    for api in made:
        await api.http.aclose()
        await api.state.registry.shutdown()
