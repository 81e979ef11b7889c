"""Connecting to Redis: an external server by URL, or the embedded one under the data dir.

``RedisHandle`` bundles the client (``decode_responses=True``, connections named
``shepherd-<pid>``) with the key registry and the stores (slots, leases, circuits, replica
presence, agent health, reconcile requests, controller reports). Closing it closes the client and,
for the embedded server, stops the server when this was its last user (see ``embedded``).

Guarantees: a handle returned by ``connect_redis`` has answered PING; any failure to get there is
a ``RedisStoreError`` naming the URL (password redacted) or the socket.
Must not: fall back to localhost or to the embedded server when a URL is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from shepherd.core.redaction import redact as redact_secrets
from shepherd.errors import RedisStoreError
from shepherd.stores.redis.agent_health import AgentHealthStore
from shepherd.stores.redis.canary_view import CanaryView
from shepherd.stores.redis.circuits import CircuitStore
from shepherd.stores.redis.cursors import CursorStore
from shepherd.stores.redis.dispatch_view import DispatchView, read_dispatch_view
from shepherd.stores.redis.embedded import EmbeddedRedis, client_name
from shepherd.stores.redis.epoch import EpochStore
from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys
from shepherd.stores.redis.leases import LeaseStore
from shepherd.stores.redis.presence import PresenceReader
from shepherd.stores.redis.reconcile import ReconcileRequests
from shepherd.stores.redis.replicas import ReplicaStore
from shepherd.stores.redis.reports import ControllerReports
from shepherd.stores.redis.scripts import Scripts
from shepherd.stores.redis.sessions import SessionStore
from shepherd.stores.redis.slots import SlotStore
from shepherd.stores.redis.ticks import TickStore

# A call redials a dropped connection (a restarted server leaves every pooled one dead) a few
# times within about a tenth of a second, then fails: the caller's loop retries on its next tick,
# and a readiness probe answers at once instead of waiting out redis-py's default 10 retries.
RETRIES = 3
RETRY_BASE_S = 0.01
RETRY_CAP_S = 0.05
# A server that accepts but never answers (stopped, wedged) must not hang every controller.
SOCKET_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0


def redact(url: str) -> str:
    """A URL fit for a message: any password replaced (the one rule of ``core.redaction``)."""
    return redact_secrets(url)


@dataclass
class RedisHandle:
    client: Redis
    keys: Keys
    slots: SlotStore
    leases: LeaseStore
    circuits: CircuitStore
    replicas: ReplicaStore
    health: AgentHealthStore
    reconcile: ReconcileRequests
    reports: ControllerReports
    ticks: TickStore
    cursors: CursorStore
    epoch: EpochStore
    embedded: EmbeddedRedis | None = None

    @property
    def sessions(self) -> SessionStore:
        return SessionStore(self.client, self.keys)

    @property
    def canary(self) -> CanaryView:
        return CanaryView(self.client, self.keys)

    @property
    def presence(self) -> PresenceReader:
        return PresenceReader(self.client, self.keys)

    async def dispatch_view(self, agents: Sequence[str]) -> DispatchView:
        """A dispatcher pass's reads, in one round trip (``dispatch_view.py``)."""
        return await read_dispatch_view(self.client, self.keys, agents)

    async def ping(self) -> None:
        async with translated("ping"):
            await self.client.ping()

    async def close(self) -> None:
        """Close the client, then let the embedded server stop if nobody else uses it."""
        try:
            await self.client.aclose()
        finally:
            if self.embedded is not None:
                await self.embedded.stop_if_last()


def handle_for(client: Redis, prefix: str, embedded: EmbeddedRedis | None = None) -> RedisHandle:
    """A handle on an already connected client (the scripts are registered here, once)."""
    keys = Keys(prefix)
    scripts = Scripts(client)
    return RedisHandle(client, keys, SlotStore(client, keys, scripts),
                       LeaseStore(client, scripts), CircuitStore(client, keys, scripts),
                       ReplicaStore(client, keys), AgentHealthStore(client, keys, scripts),
                       ReconcileRequests(client, keys, scripts), ControllerReports(client, keys),
                       TickStore(client, keys), CursorStore(client, keys), EpochStore(client, keys),
                       embedded)


async def connect_redis(redis_url: str | None, data_dir: Path, prefix: str) -> RedisHandle:
    """Connect to ``redis_url``, or without one to the embedded server of ``data_dir``."""
    embedded = None
    if redis_url is None:
        embedded = EmbeddedRedis(data_dir)
        await embedded.start()
        redis_url = embedded.url
    try:
        client = await _connected(redis_url)
    except BaseException:
        if embedded is not None:
            await embedded.stop_if_last()
        raise
    return handle_for(client, prefix, embedded)


async def _connected(redis_url: str) -> Redis:
    try:
        client = Redis.from_url(
            redis_url, decode_responses=True, client_name=client_name(),
            retry=Retry(ExponentialWithJitterBackoff(cap=RETRY_CAP_S, base=RETRY_BASE_S), RETRIES),
            socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=CONNECT_TIMEOUT_S,
        )
    except ValueError as exc:
        raise RedisStoreError(f"bad Redis URL {redact(redis_url)!r}: {exc}") from exc
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        raise RedisStoreError(f"cannot reach Redis at {redact(redis_url)}: {exc}") from exc
    return client
