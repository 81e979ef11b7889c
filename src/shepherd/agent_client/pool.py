"""One pooled connection set (``wire.Wire``) per runtime base URL, and each URL's drop-grace window.

After a connection to a URL drops, its pooled client is evicted (only if it is still the one
that failed: a newer client is never closed by an old failure) and, for ``DROP_GRACE_S``, calls to
that URL use single-use clients: a pool full of half-dead connections is not reused while the
network settles.

Guarantees: a single-use client is closed when its call ends, however it ends; an evicted client
is closed as soon as the last call still in flight on it ends (never under a running call), so a
long-lived control plane that sees many drops does not accumulate open sockets.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable

from shepherd.agent_client.breaker import BreakerHook, NullBreaker
from shepherd.agent_client.client import AgentClient
from shepherd.agent_client.wire import Wire

# Long enough to outlast a brief network blip or a proxy reload; short enough not to matter.
DROP_GRACE_S = 2.0
MAX_CONNECTIONS_PER_URL = 20
# Shorter than the runtime's keep-alive (agent_runtime/server.py): reusing a connection the
# server already closed would look like a dropped connection.
KEEPALIVE_EXPIRY_S = 2.0


class AgentClientPool:
    def __init__(
        self, breaker: BreakerHook | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._breaker = breaker or NullBreaker()
        self._monotonic = monotonic
        self._http: dict[str, Wire] = {}
        self._drop_until: dict[str, float] = {}
        self._clients: dict[tuple[str, str, str], AgentClient] = {}
        self._in_flight: dict[Wire, int] = {}
        self._evicted: set[Wire] = set()

    def client_for(self, name: str, base_url: str, token: str) -> AgentClient:
        key = (name, base_url.rstrip("/"), token)
        client = self._clients.get(key)
        if client is None:
            client = AgentClient(name, key[1], token, pool=self, breaker=self._breaker)
            self._clients[key] = client
        return client

    def in_drop_grace(self, base_url: str) -> bool:
        return self._monotonic() < self._drop_until.get(base_url, 0.0)

    @contextlib.asynccontextmanager
    async def borrow(self, base_url: str) -> AsyncIterator[Wire]:
        """The client for one call: single-use during the URL's drop grace, else the pooled one."""
        if self.in_drop_grace(base_url):
            single = Wire(base_url, max_connections=1, keepalive_expiry_s=0.0)
            try:
                yield single
            finally:
                await single.aclose()
            return
        http = self._pooled_client(base_url)
        self._in_flight[http] = self._in_flight.get(http, 0) + 1
        try:
            yield http
        finally:
            await self._give_back(http)

    def _pooled_client(self, base_url: str) -> Wire:
        http = self._http.get(base_url)
        if http is None or http.is_closed:
            http = Wire(base_url, max_connections=MAX_CONNECTIONS_PER_URL,
                        keepalive_expiry_s=KEEPALIVE_EXPIRY_S)
            self._http[base_url] = http
        return http

    async def _give_back(self, http: Wire) -> None:
        left = self._in_flight[http] - 1
        if left > 0:
            self._in_flight[http] = left
            return
        del self._in_flight[http]
        if http in self._evicted:
            self._evicted.discard(http)
            await http.aclose()

    def mark_dropped(self, base_url: str, failed: Wire) -> None:
        self._drop_until[base_url] = self._monotonic() + DROP_GRACE_S
        if self._http.get(base_url) is failed:
            # Closed by the last call still running on it (``_give_back``), never under one.
            self._evicted.add(self._http.pop(base_url))

    def pooled(self, base_url: str) -> Wire | None:
        return self._http.get(base_url)

    @property
    def evicted_open(self) -> int:
        """Evicted clients still waiting for their in-flight calls to end."""
        return len(self._evicted)

    async def aclose(self) -> None:
        for http in [*self._http.values(), *self._evicted]:
            await http.aclose()
        self._http.clear()
        self._evicted.clear()
        self._in_flight.clear()
        self._clients.clear()
