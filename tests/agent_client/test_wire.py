"""The runtime protocol's HTTP/1.1 client against raw asyncio servers on 127.0.0.1: what it sends,
the three ways a body is sized, when a connection is reused, and how each failure is raised."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from shepherd.agent_client.transport import kind_of
from shepherd.agent_client.wire import Dropped, ExchangeTimeout, Wire
from shepherd.core.classification import TransportKind
from tests.agent_client.conftest import Monotonic

Answer = Callable[[bytes], Awaitable[bytes | None]]  # request head+body -> raw response


@dataclass
class Server:
    url: str
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return head + await reader.readexactly(length)


@contextlib.asynccontextmanager
async def serving(answer: Answer, close_after: bool = False) -> AsyncIterator[Server]:
    """Answers every request on a connection with ``answer``; ``None`` closes it instead."""
    served = Server("")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.connections += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                request = await read_request(reader)
                served.requests.append(request)
                raw = await answer(request)
                if raw is None:
                    break
                writer.write(raw)
                await writer.drain()
                if close_after:
                    break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    served.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield served
    finally:
        server.close()


def sized(body: bytes, extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body


def answering(raw: bytes) -> Answer:
    async def answer(request: bytes) -> bytes:
        return raw
    return answer


async def call(wire: Wire, path: str = "/v1/events", **kwargs: object) -> tuple[int, bytes]:
    response = await wire.request("GET", path, headers={"Authorization": "Bearer t"},
                                  timeout_s=2, connect_timeout_s=2, **kwargs)  # type: ignore[arg-type]
    return response.status_code, response.content


@pytest.fixture
async def wire_for() -> AsyncIterator[Callable[..., Wire]]:
    made: list[Wire] = []

    def make(url: str, **kwargs: object) -> Wire:
        options: dict[str, object] = {"max_connections": 4, "keepalive_expiry_s": 5.0, **kwargs}
        made.append(Wire(url, **options))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for wire in made:
        await wire.aclose()


async def test_a_request_carries_its_query_headers_and_compact_json(
    wire_for: Callable[..., Wire],
) -> None:
    async with serving(answering(sized(b"{}"))) as served:
        wire = wire_for(served.url + "/prefix/")
        response = await wire.request("POST", "/v1/acks", headers={"Authorization": "Bearer t"},
                                      params={"after": 3, "until": "exited"},
                                      json_body={"execution_ids": ["e1"]},
                                      timeout_s=2, connect_timeout_s=2)
    assert response.is_success and response.json() == {}
    head, _, body = served.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /prefix/v1/acks?after=3&until=exited HTTP/1.1"
    assert {"Authorization: Bearer t", "Content-Type: application/json",
            f"Content-Length: {len(body)}"} <= set(lines)
    assert json.loads(body) == {"execution_ids": ["e1"]} and b" " not in body


async def test_a_chunked_body_is_joined_and_the_connection_kept(
    wire_for: Callable[..., Wire],
) -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
    async with serving(answering(chunked)) as served:
        wire = wire_for(served.url)
        assert await call(wire) == (200, b"hello world")
        assert await call(wire) == (200, b"hello world")
    assert served.connections == 1


async def test_a_body_sized_by_the_close_is_read_to_the_end_and_not_reused(
    wire_for: Callable[..., Wire],
) -> None:
    async with serving(answering(b"HTTP/1.1 200 OK\r\n\r\nall of it"), close_after=True) as served:
        wire = wire_for(served.url)
        assert await call(wire) == (200, b"all of it")
        assert await call(wire) == (200, b"all of it")
    assert served.connections == 2


@pytest.mark.parametrize("extra", ["Connection: close\r\n", ""])
async def test_a_connection_the_server_closes_is_never_reused(
    wire_for: Callable[..., Wire], extra: str,
) -> None:
    """Said (``Connection: close``) or not: a close the loop has not seen yet still counts."""
    async with serving(answering(sized(b"ok", extra)), close_after=True) as served:
        wire = wire_for(served.url)
        for _ in range(3):
            assert await call(wire) == (200, b"ok")
    assert served.connections == 3


async def test_an_idle_connection_is_reused_until_it_expires(
    wire_for: Callable[..., Wire], monotonic: Monotonic,
) -> None:
    async with serving(answering(sized(b"ok"))) as served:
        wire = wire_for(served.url, keepalive_expiry_s=2.0, monotonic=monotonic)
        await call(wire)
        await call(wire)
        assert served.connections == 1
        monotonic.advance(2.0)
        await call(wire)
        assert served.connections == 2


@pytest.mark.parametrize("raw", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n",
                                 b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n"])
async def test_an_answer_that_is_not_http_is_a_drop(
    wire_for: Callable[..., Wire], raw: bytes,
) -> None:
    async with serving(answering(raw)) as served:
        with pytest.raises(Dropped) as raised:
            await call(wire_for(served.url))
    assert kind_of(raised.value) is TransportKind.DROPPED


async def test_a_body_cut_short_times_out_and_its_connection_is_not_reused(
    wire_for: Callable[..., Wire],
) -> None:
    answers = iter([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", sized(b"ok")])

    async def answer(request: bytes) -> bytes:
        return next(answers)  # the first is short: the server then waits for another request

    async with serving(answer) as served:
        wire = wire_for(served.url)
        with pytest.raises(ExchangeTimeout):
            await wire.request("GET", "/", headers={}, timeout_s=0.2, connect_timeout_s=1)
        assert await call(wire) == (200, b"ok")
    assert served.connections == 2


async def test_waiting_for_a_free_connection_counts_toward_the_timeout(
    wire_for: Callable[..., Wire],
) -> None:
    release = asyncio.Event()

    async def answer(request: bytes) -> bytes:
        await release.wait()
        return sized(b"ok")

    async with serving(answer) as served:
        wire = wire_for(served.url, max_connections=1)
        first = asyncio.create_task(call(wire))
        await asyncio.sleep(0.05)
        with pytest.raises(ExchangeTimeout, match="no free connection"):
            await wire.request("GET", "/", headers={}, timeout_s=0.2, connect_timeout_s=1)
        release.set()
        assert await first == (200, b"ok")


async def test_a_closed_wire_refuses_requests(wire_for: Callable[..., Wire]) -> None:
    async with serving(answering(sized(b"ok"))) as served:
        wire = wire_for(served.url)
        await call(wire)
        await wire.aclose()
        assert wire.is_closed
        with pytest.raises(Dropped):
            await call(wire)


def test_a_base_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="not an http"):
        Wire("ftp://host/", max_connections=1, keepalive_expiry_s=1)
