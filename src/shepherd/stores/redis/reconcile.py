"""Reconcile requests: how the monitor asks the watchdog to look at one agent now.

A request is kept on the agent's cursor hash (``reconcile_requested_at_ms``,
``reconcile_reason``) and announced on the ``watchdog:requests`` channel with the agent's name,
in one script, so every replica's watchdog wakes at once whichever replica's monitor asked. The
watchdog consumes a request (``take``: read and clear in one script) when it reconciles that
agent, so a request is acted on once; a request whose message nobody heard (no watchdog
listening, a replica restarting) is still consumed by the next full cycle. Nothing polls the
flags to find work.

Must not: decide what a reconcile does, or retry a failed listen (the guarded task around
``listen`` restarts it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from redis.asyncio import Redis

from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys
from shepherd.stores.redis.scripts import Scripts


class RequestResult(IntEnum):
    """Return codes of reconcile_request.lua."""

    STORED = 0  # kept for the next cycle; no watchdog was listening
    DELIVERED = 1


class TakeResult(IntEnum):
    """Return codes of reconcile_take.lua."""

    NONE = 0
    TAKEN = 1


@dataclass(frozen=True, slots=True)
class ReconcileRequest:
    agent: str
    requested_at_ms: int
    reason: str


class ReconcileRequests:
    def __init__(self, client: Redis, keys: Keys, scripts: Scripts) -> None:
        self._client = client
        self._keys = keys
        self._scripts = scripts

    async def request(self, agent: str, reason: str, now_ms: int) -> RequestResult:
        async with translated("request reconcile"):
            code = await self._scripts.run(
                "reconcile_request", [self._keys.agent_cursor(agent)],
                [now_ms, reason, self._keys.reconcile_channel(), agent],
            )
        return RequestResult(int(code))

    async def take(self, agent: str) -> ReconcileRequest | None:
        """Consume the agent's pending request, if any."""
        async with translated("take reconcile request"):
            found = await self._scripts.run("reconcile_take", [self._keys.agent_cursor(agent)], [])
        if TakeResult(int(found[0])) is TakeResult.NONE:
            return None
        return ReconcileRequest(agent, int(found[1]), str(found[2]))

    async def listen(self, on_request: Callable[[str], None]) -> None:
        """Call ``on_request(agent)`` for every request announced, until cancelled."""
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            async with translated("subscribe to reconcile requests"):
                await pubsub.subscribe(self._keys.reconcile_channel())
            while True:
                async with translated("listen for reconcile requests"):
                    message = await pubsub.get_message(timeout=None)
                if message is not None and message.get("type") == "message":
                    on_request(str(message["data"]))
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
