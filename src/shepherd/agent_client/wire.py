"""HTTP/1.1 to one runtime base URL: keep-alive connections, JSON in, bytes out.

The runtime protocol needs little of HTTP: a method, a path with a query, a JSON body and a few
headers; a status and a body sized by ``Content-Length``, chunks, or the end of the connection.
A general client paid ~0.8 ms of CPU per request for what it could do besides (on this path that
was a fifth of the control plane's CPU at small batches); this does the exchange in ~0.1 ms.

Failures are raised as the kinds ``transport.kind_of`` classifies, each with the OS error that
caused it as ``__cause__`` (so a reset is told from a silent close): ``ConnectTimeout``,
``ConnectFailed``, ``ExchangeTimeout`` (the whole request, waiting for a free connection
included) and ``Dropped`` (the connection failed or closed mid-exchange, or the peer answered
something that is not HTTP/1.x). A connection whose exchange did not end cleanly is closed, never
reused; an idle one is reused only while younger than ``keepalive_expiry_s`` and not closed by
the peer.
"""

from __future__ import annotations

import asyncio
import functools
import json
import select
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

HEAD_END = b"\r\n\r\n"
LINE_END = b"\r\n"
MAX_HEAD_BYTES = 64 * 1024
NO_BODY_STATUSES = frozenset({204, 304})


class WireError(Exception):
    """A request that got no HTTP response."""


class ConnectTimeout(WireError):
    pass


class ConnectFailed(WireError):
    pass


class ExchangeTimeout(WireError):
    pass


class Dropped(WireError):
    pass


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int
    content: bytes
    method: str
    path: str

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


@dataclass(slots=True, eq=False)  # hashed by identity: held in a set while busy
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def abort(self) -> None:
        self.writer.transport.abort()

    def quiet(self) -> bool:
        """Idle and still open: nothing to read (a peer's close shows as readable before the
        loop has seen it)."""
        if self.reader.at_eof() or self.writer.is_closing():
            return False
        sock = self.writer.get_extra_info("socket")
        return sock is None or not select.select([sock], [], [], 0)[0]


class Wire:
    """Keep-alive connections to one base URL, at most ``max_connections`` at once."""

    def __init__(
        self, base_url: str, *, max_connections: int, keepalive_expiry_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        secure = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if secure else 80)
        self._host_header = parts.netloc.rpartition("@")[2]
        self._prefix = parts.path.rstrip("/")
        self._tls = _tls_context() if secure else None
        self._expiry_s = keepalive_expiry_s
        self._monotonic = monotonic
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()
        self.is_closed = False

    async def request(
        self, method: str, path: str, *, headers: Mapping[str, str],
        params: Mapping[str, Any] | None = None, json_body: Any = None,
        timeout_s: float, connect_timeout_s: float,
    ) -> Response:
        if self.is_closed:
            raise Dropped("the client is closed")
        data = self._encode(method, path, headers, params, json_body)
        try:
            async with asyncio.timeout(timeout_s):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise ExchangeTimeout(f"no free connection within {timeout_s:g}s") from exc
        try:
            connection = self._reuse() or await self._connect(connect_timeout_s)
            self._busy.add(connection)
            try:
                async with asyncio.timeout(timeout_s):
                    status, content, keep = await _exchange(connection, data, method)
            except BaseException as exc:
                connection.abort()  # mid-exchange: whatever is left on it is garbage
                if isinstance(exc, TimeoutError):
                    raise ExchangeTimeout(f"no answer within {timeout_s:g}s") from exc
                raise
            finally:
                self._busy.discard(connection)
        finally:
            self._slots.release()
        if keep and not self.is_closed:
            connection.idle_since = self._monotonic()
            self._idle.append(connection)
        else:
            connection.writer.close()
        return Response(status, content, method, path)

    async def aclose(self) -> None:
        self.is_closed = True
        for connection in [*self._idle, *self._busy]:
            connection.abort()
        self._idle.clear()
        self._busy.clear()

    def _encode(
        self, method: str, path: str, headers: Mapping[str, str],
        params: Mapping[str, Any] | None, json_body: Any,
    ) -> bytes:
        target = self._prefix + path + (f"?{urlencode(params, doseq=True)}" if params else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        body = b""
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            lines.append("Content-Type: application/json")
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        return "\r\n".join(lines).encode("latin-1") + HEAD_END + body

    def _reuse(self) -> _Connection | None:
        now = self._monotonic()
        while self._idle:
            connection = self._idle.pop()
            if now - connection.idle_since < self._expiry_s and connection.quiet():
                return connection
            connection.abort()
        return None

    async def _connect(self, timeout_s: float) -> _Connection:
        where = f"{self._host}:{self._port}"
        try:
            async with asyncio.timeout(timeout_s):
                reader, writer = await asyncio.open_connection(
                    self._host, self._port, ssl=self._tls, limit=MAX_HEAD_BYTES)
        except TimeoutError as exc:
            raise ConnectTimeout(f"connect to {where}: no answer within {timeout_s:g}s") from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(f"connect to {where}: {exc.__class__.__name__}") from exc
        return _Connection(reader, writer)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying context for every https runtime: building one loads the CA store, and a
    URL in its drop grace gets a new ``Wire`` for every call."""
    return ssl.create_default_context()


async def _exchange(
    connection: _Connection, data: bytes, method: str
) -> tuple[int, bytes, bool]:
    """Send one request, read its response: (status, body, whether the connection is reusable)."""
    reader, writer = connection.reader, connection.writer
    try:
        writer.write(data)
        await writer.drain()
        head = await reader.readuntil(HEAD_END)
        status, version, fields = _parse_head(head)
        keep = version == b"HTTP/1.1" and fields.get("connection", "").lower() != "close"
        if method == "HEAD" or status in NO_BODY_STATUSES or status < 200:
            return status, b"", keep
        if fields.get("transfer-encoding", "").lower() == "chunked":
            return status, await _read_chunks(reader), keep
        if "content-length" in fields:
            return status, await reader.readexactly(_length(fields["content-length"])), keep
        return status, await reader.read(), False  # sized by the end of the connection
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
        raise Dropped(f"connection lost mid-exchange ({exc.__class__.__name__})") from exc


def _parse_head(head: bytes) -> tuple[int, bytes, dict[str, str]]:
    status_line, *header_lines = head[:-len(HEAD_END)].split(LINE_END)
    version, _, rest = status_line.partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or not code.isdigit():
        raise Dropped(f"not an HTTP/1.x response: {status_line[:40]!r}")
    fields: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(b":")
        if sep:
            fields[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return int(code), version, fields


def _length(value: str) -> int:
    if not value.isdigit():
        raise Dropped(f"bad Content-Length {value[:20]!r}")
    return int(value)


async def _read_chunks(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(LINE_END)
        try:
            size = int(size_line.split(b";", 1)[0], 16)
        except ValueError as exc:
            raise Dropped(f"bad chunk size {size_line[:20]!r}") from exc
        if size == 0:
            while await reader.readuntil(LINE_END) != LINE_END:
                pass  # trailers, unused
            return b"".join(parts)
        parts.append((await reader.readexactly(size + len(LINE_END)))[:-len(LINE_END)])
