"""Completion webhooks against a local receiver that records what it got (the receiver is outside
the unit; the execution path is real)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest

from shepherd.core.ids import AgentName
from shepherd.core.models import Trigger
from shepherd.core.status import ExecutionStatus as S
from tests.controllers.conftest import Controllers
from tests.fixtures.runtimes import StartRuntime


class Receiver:
    def __init__(self, status: int) -> None:
        self.status = status
        self.requests: list[tuple[dict[str, str], dict[str, object]]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:] if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((headers, json.loads(body)))
        writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def receiving(status: int) -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver(status)
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    try:
        yield receiver, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    finally:
        server.close()


async def run_one(c: Controllers, start_runtime: StartRuntime, hook: str) -> str:
    runtime = await start_runtime("hooked", ["sh", "-c", "cat >/dev/null; echo ok"])
    await c.db.agents.create(name=AgentName("hooked"), url=runtime.url, command=None,
                             completion_webhook_url=hook)
    row = await c.db.executions.submit(agent=AgentName("hooked"), input="", trigger=Trigger.API,
                                       created_by="t")
    await c.dispatcher.run_once()
    agent = await c.db.agents.get("hooked")
    client = c.directory.client_for(agent)
    assert client is not None
    await client.get(row.id, wait_s=10)
    await c.monitor.sync_agent(agent, client)
    await c.finalizer.run_once()
    return row.id


@pytest.mark.parametrize("sql_url", ["sqlite"], indirect=True)
async def test_a_finished_execution_posts_its_summary_once_with_an_idempotency_key(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    async with receiving(200) as (receiver, hook):
        eid = await run_one(controllers, start_runtime, hook)
        await controllers.finalizer.run_once()  # nothing left to finalize: no second post
    [(headers, body)] = receiver.requests
    assert headers["idempotency-key"] == f"{eid}:1"
    assert (body["execution_id"], body["status"], body["exit_code"]) == (eid, "success", 0)


@pytest.mark.parametrize("sql_url", ["sqlite"], indirect=True)
async def test_a_failing_receiver_is_retried_and_never_blocks_the_result(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    async with receiving(503) as (receiver, hook):
        eid = await run_one(controllers, start_runtime, hook)
    assert len(receiver.requests) == 3
    assert (await controllers.db.executions.get(eid)).status is S.SUCCESS
