"""One pooled httpx client per runtime base URL, and each URL's drop-grace window.

After a connection to a URL drops, its pooled client is evicted (only if it is still the one
that failed: a newer client is never closed by an old failure) and, for ``DROP_GRACE_S``, calls to
that URL use single-use clients: a pool full of half-dead connections is not reused while the
network settles.
"""

from __future__ import annotations

import time

import httpx

from shepherd.agent_client.breaker import BreakerHook, NullBreaker
from shepherd.agent_client.client import AgentClient

# Long enough to outlast a brief network blip or a proxy reload; short enough not to matter.
DROP_GRACE_S = 2.0
MAX_CONNECTIONS_PER_URL = 20
# Shorter than the runtime's keep-alive (agent_runtime/server.py): reusing a connection the
# server already closed would look like a dropped connection.
KEEPALIVE_EXPIRY_S = 2.0


class AgentClientPool:
    def __init__(self, breaker: BreakerHook | None = None) -> None:
        self._breaker = breaker or NullBreaker()
        self._http: dict[str, httpx.AsyncClient] = {}
        self._drop_until: dict[str, float] = {}
        self._clients: dict[tuple[str, str, str], AgentClient] = {}
        self._evicted: list[httpx.AsyncClient] = []

    def client_for(self, name: str, base_url: str, token: str) -> AgentClient:
        key = (name, base_url.rstrip("/"), token)
        client = self._clients.get(key)
        if client is None:
            client = AgentClient(name, key[1], token, pool=self, breaker=self._breaker)
            self._clients[key] = client
        return client

    def in_drop_grace(self, base_url: str) -> bool:
        return time.monotonic() < self._drop_until.get(base_url, 0.0)

    def http_for(self, base_url: str) -> tuple[httpx.AsyncClient, bool]:
        """The client to use for one call, and whether it is single-use (close it after)."""
        if self.in_drop_grace(base_url):
            return httpx.AsyncClient(base_url=base_url), True
        http = self._http.get(base_url)
        if http is None or http.is_closed:
            limits = httpx.Limits(
                max_connections=MAX_CONNECTIONS_PER_URL, keepalive_expiry=KEEPALIVE_EXPIRY_S
            )
            http = httpx.AsyncClient(base_url=base_url, limits=limits)
            self._http[base_url] = http
        return http, False

    def mark_dropped(self, base_url: str, failed: httpx.AsyncClient) -> None:
        self._drop_until[base_url] = time.monotonic() + DROP_GRACE_S
        if self._http.get(base_url) is failed:
            # Closed in aclose(): closing it here could cut other calls still in flight on it.
            self._evicted.append(self._http.pop(base_url))

    def pooled(self, base_url: str) -> httpx.AsyncClient | None:
        return self._http.get(base_url)

    async def aclose(self) -> None:
        for http in [*self._http.values(), *self._evicted]:
            await http.aclose()
        self._http.clear()
        self._evicted.clear()
        self._clients.clear()
