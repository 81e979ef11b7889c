"""The agent client against stand-in servers on 127.0.0.1 (the runtime is outside this unit):
response mapping, transport failures, drop-grace, breaker verdicts, pooling."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from shepherd.agent_client.pool import AgentClientPool
from shepherd.agent_client.protocol import StartRequest
from shepherd.core.classification import Verdict
from shepherd.errors import (
    AgentConnectionDropped,
    AgentProtocolError,
    AgentRejected,
    AgentUnreachable,
    ExecutionNotFound,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Recording:
    def __init__(self) -> None:
        self.verdicts: list[Verdict] = []

    async def before(self, agent: str) -> None:
        return None

    async def record(self, agent: str, verdict: Verdict, detail: str = "") -> None:
        self.verdicts.append(verdict)

    async def admits(self, agent: str) -> bool:
        return True

    async def retry_after_s(self, agent: str, floor_s: float) -> float:
        return floor_s


def reply(status: int, body: str) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
        await writer.drain()
        writer.close()

    return handle


async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"par")
    await writer.drain()
    writer.transport.abort()


async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1)


@pytest.fixture
async def breaker() -> Recording:
    return Recording()


@pytest.fixture
async def pool(breaker: Recording) -> AsyncIterator[AgentClientPool]:
    clients = AgentClientPool(breaker)
    yield clients
    await clients.aclose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


START = StartRequest(execution_id="e1", input="", timeout_s=5)
STARTED = '{"execution_id": "e1", "pid": 7, "started_at_ms": 1, "boot_id": "b"}'


async def test_a_good_response_parses_into_the_model(
    pool: AgentClientPool, breaker: Recording
) -> None:
    async with serving(reply(202, STARTED)) as url:
        started = await pool.client_for("a", url, "t").start(START)
    assert (started.pid, started.boot_id) == (7, "b")
    assert breaker.verdicts == [Verdict.SUCCESS]


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, '{"code": "unauthenticated", "message": "no"}', AgentRejected),
        (422, '{"code": "invalid_request", "message": "timeout_s: required"}', AgentRejected),
        (500, "oops", AgentProtocolError),
        (202, '{"unexpected": true}', AgentProtocolError),
    ],
)
async def test_error_responses_map_to_the_error_tree_and_count_as_alive(
    pool: AgentClientPool, breaker: Recording, status: int, body: str, error: type[Exception]
) -> None:
    async with serving(reply(status, body)) as url:
        with pytest.raises(error):
            await pool.client_for("a", url, "t").start(START)
    assert breaker.verdicts == [Verdict.SUCCESS]


async def test_a_404_on_an_execution_is_not_found(pool: AgentClientPool) -> None:
    async with serving(reply(404, '{"code": "execution_not_found", "message": "x"}')) as url:
        with pytest.raises(ExecutionNotFound):
            await pool.client_for("a", url, "t").get("e1")


async def test_a_refused_connection_is_unreachable_and_a_failure(
    pool: AgentClientPool, breaker: Recording
) -> None:
    client = pool.client_for("a", f"http://127.0.0.1:{free_port()}", "t")
    with pytest.raises(AgentUnreachable) as info:
        await client.health()
    assert not isinstance(info.value, AgentConnectionDropped)
    assert breaker.verdicts == [Verdict.FAILURE]
    assert "t" not in info.value.message.split()


async def test_a_drop_is_neutral_evicts_the_pool_and_opens_a_grace_window(
    pool: AgentClientPool, breaker: Recording
) -> None:
    async with serving(drop) as url:
        client = pool.client_for("a", url, "t")
        with pytest.raises(AgentConnectionDropped):
            await client.list_executions()
        assert breaker.verdicts == [Verdict.NEUTRAL]
        assert pool.pooled(url) is None and pool.in_drop_grace(url)
    # the server is gone now: within the grace a refused connect is neutral, and "dropped"
    with pytest.raises(AgentConnectionDropped):
        await client.list_executions()
    assert breaker.verdicts == [Verdict.NEUTRAL, Verdict.NEUTRAL]


async def test_a_hanging_server_times_out_neutrally_but_fails_a_health_probe(
    pool: AgentClientPool, breaker: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shepherd.agent_client.client as client_module

    monkeypatch.setattr(client_module, "REQUEST_TIMEOUT_S", 0.2)
    async with serving(hang) as url:
        client = pool.client_for("a", url, "t")
        with pytest.raises(AgentUnreachable):
            await client.list_executions()
        with pytest.raises(AgentUnreachable):
            await client.health()
    assert breaker.verdicts == [Verdict.NEUTRAL, Verdict.FAILURE]


async def test_a_long_poll_extends_the_read_timeout(
    pool: AgentClientPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shepherd.agent_client.client as client_module

    monkeypatch.setattr(client_module, "REQUEST_TIMEOUT_S", 0.1)
    page = '{"boot_id": "b", "events": [], "last_seq": 0}'

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.4)
        await reply(200, page)(reader, writer)

    async with serving(slow) as url:
        result = await pool.client_for("a", url, "t").events(after=0, wait_s=1)
    assert result.last_seq == 0


async def test_the_pool_shares_one_http_client_per_url(pool: AgentClientPool) -> None:
    async with serving(reply(202, STARTED)) as url:
        a = pool.client_for("a", url, "t")
        b = pool.client_for("b", url, "t")
        assert pool.client_for("a", url, "t") is a
        await a.start(START)
        first = pool.pooled(url)
        await b.start(START)
        assert first is not None and pool.pooled(url) is first
    await pool.aclose()
    assert first.is_closed
