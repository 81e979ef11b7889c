"""The REST API over real stores: an app built from the ``db`` and ``redis_handle`` fixtures, one
token per role, and clients that speak to the app in-process through ``ASGITransport``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import httpx
import pytest
from fastapi import FastAPI

from shepherd.api.app import create_api
from shepherd.api.context import ApiContext
from shepherd.controllers.base import Wakeup
from shepherd.controllers.directory import AgentDirectory
from shepherd.core.clock import ManualClock
from shepherd.core.ids import AgentName
from shepherd.core.models import Agent
from shepherd.services.tokens import Role, create_token
from shepherd.settings import Settings
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database

TICKS = {"dispatcher": 1_700_000_000_000, "scheduler": None}


@dataclass
class RecordingRuntime:
    """Stands in for an agent runtime: remembers which executions it was asked to terminate
    and to ack."""

    terminated: list[str] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)

    async def terminate(self, execution_id: str) -> object:
        self.terminated.append(execution_id)
        return None

    async def ack(self, execution_id: str) -> None:
        self.acked.append(execution_id)


@dataclass
class RecordingDirectory:
    runtime: RecordingRuntime = field(default_factory=RecordingRuntime)

    def client_for(self, agent: Agent) -> RecordingRuntime | None:
        return self.runtime if agent.url else None


@dataclass
class Api:
    app: FastAPI
    ctx: ApiContext
    db: Database
    redis: RedisHandle
    clock: ManualClock
    directory: RecordingDirectory
    tokens: dict[str, str]  # role (or "scoped") -> secret

    def client(self, who: str | None = "admin") -> httpx.AsyncClient:
        """A client holding the token of ``who`` (a role, "scoped", or None for no token)."""
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://shepherd.test",
            headers=headers,
        )

    async def add_agent(self, name: str, url: str | None = None, **fields: object) -> Agent:
        return await self.db.agents.create(name=AgentName(name), url=url, command=None, **fields)


@pytest.fixture
async def api(
    db: Database, redis_handle: RedisHandle, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[Api]:
    directory = RecordingDirectory()
    ctx = ApiContext(
        db=db, redis=redis_handle, settings=Settings(data_dir=tmp_path), clock=clock,
        directory=cast(AgentDirectory, directory), dispatch_wakeup=Wakeup(),
        controller_ticks=lambda: dict(TICKS),
    )
    await db.agents.create(name=AgentName("alpha"), url="http://alpha.test", command=None)
    await db.agents.create(name=AgentName("beta"), url=None, command=("true",))
    tokens: dict[str, str] = {}
    for role in Role:
        made = await create_token(db, name=f"{role}-token", role=role, agent=None,
                                  now_ms=clock.now_ms())
        tokens[role.value] = made.secret
    scoped = await create_token(db, name="alpha-operator", role=Role.OPERATOR,
                                agent=AgentName("alpha"), now_ms=clock.now_ms())
    tokens["scoped"] = scoped.secret
    scoped_admin = await create_token(db, name="alpha-admin", role=Role.ADMIN,
                                      agent=AgentName("alpha"), now_ms=clock.now_ms())
    tokens["scoped-admin"] = scoped_admin.secret
    yield Api(create_api(ctx), ctx, db, redis_handle, clock, directory, tokens)


@pytest.fixture
def client_for(api: Api) -> Callable[[str | None], httpx.AsyncClient]:
    return api.client
