"""Leases: a key holding its owner's token with a PX TTL; only the owner renews or releases it.

Guarantees: at most one holder per key at a time (acquire is SET NX PX, so a second holder is
refused even when it shares the owner token); renew and release check the owner inside one
script, so a holder whose lease expired and was taken can never extend or delete the new one.

``hold`` is the heartbeat form: it yields whether the lease was acquired, renews every ttl/3 while
the caller works, and on exit stops the heartbeat (awaiting it) and releases owner-checked.

``read`` gives the owners of many leases in one round trip, each read on its own: a key that
cannot be read (the wrong type, say) is reported for that key alone, never for the others.
``held`` lists the leases matching a pattern with their owners and remaining TTLs.

Must not: decide what a lease protects, or retry; callers own both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from redis.asyncio import Redis

from shepherd.core.reaper import LeaseFact
from shepherd.errors import RedisStoreError
from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.scripts import Scripts

log = logging.getLogger("shepherd.stores.redis.leases")

# Renew three times per TTL: one late or failed renewal still leaves a third of the TTL to retry.
RENEWALS_PER_TTL = 3


class LeaseResult(IntEnum):
    """Return codes of lease_acquire.lua."""

    HELD = 0
    ACQUIRED = 1


class OwnerResult(IntEnum):
    """Return codes of lease_renew.lua and lease_release.lua."""

    NOT_OWNER = 0
    DONE = 1


@dataclass(frozen=True, slots=True)
class HeldLease:
    key: str
    owner: str
    ttl_ms: int


class LeaseStore:
    def __init__(self, client: Redis, scripts: Scripts) -> None:
        self._client = client
        self._scripts = scripts

    async def acquire(self, key: str, owner: str, ttl_ms: int) -> bool:
        """True when this call took the lease; False when anyone (this owner too) holds it."""
        async with translated(f"acquire lease {key}"):
            code = await self._scripts.run("lease_acquire", [key], [owner, ttl_ms])
        return LeaseResult(int(code)) is LeaseResult.ACQUIRED

    async def renew(self, key: str, owner: str, ttl_ms: int) -> bool:
        """Reset the TTL to ``ttl_ms`` if ``owner`` still holds the lease."""
        async with translated(f"renew lease {key}"):
            code = await self._scripts.run("lease_renew", [key], [owner, ttl_ms])
        return OwnerResult(int(code)) is OwnerResult.DONE

    async def release(self, key: str, owner: str) -> bool:
        """Delete the lease if ``owner`` holds it; True only on a real removal."""
        async with translated(f"release lease {key}"):
            code = await self._scripts.run("lease_release", [key], [owner])
        return OwnerResult(int(code)) is OwnerResult.DONE

    async def owner(self, key: str) -> str | None:
        async with translated(f"read lease {key}"):
            value = await self._client.get(key)
        return str(value) if value is not None else None

    async def read(self, keys: Sequence[str]) -> list[LeaseFact]:
        """The owner of each key (None: free), or why that one key could not be read."""
        if not keys:
            return []
        async with translated("read leases"), self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
            replies = await pipe.execute(raise_on_error=False)
        return [_fact(reply) for reply in replies]

    async def held(self, pattern: str) -> list[HeldLease]:
        """Every lease whose key matches ``pattern``, with its owner and remaining TTL."""
        async with translated(f"list leases {pattern}"):
            keys = sorted({key async for key in self._client.scan_iter(match=pattern, count=500)})
            if not keys:
                return []
            async with self._client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.get(key)
                    pipe.pttl(key)
                replies = await pipe.execute(raise_on_error=False)
        found = []
        for index, key in enumerate(keys):
            owner, ttl = replies[2 * index], replies[2 * index + 1]
            if isinstance(owner, str) and isinstance(ttl, int) and ttl > 0:
                found.append(HeldLease(key, owner, ttl))  # gone meanwhile, or not a lease: left
        return found

    @contextlib.asynccontextmanager
    async def hold(self, key: str, owner: str, ttl_ms: int) -> AsyncIterator[bool]:
        """Yield whether the lease was taken; while inside, keep it alive; on exit, give it back."""
        if not await self.acquire(key, owner, ttl_ms):
            yield False
            return
        heartbeat = asyncio.create_task(
            self._heartbeat(key, owner, ttl_ms), name=f"lease-heartbeat {key}"
        )
        try:
            yield True
        finally:
            heartbeat.cancel()
            # asyncio.wait neither raises the heartbeat's CancelledError nor hides our own: if
            # this task is cancelled while waiting, that cancellation propagates.
            await asyncio.wait([heartbeat])
            await self._release_on_exit(key, owner)

    async def _heartbeat(self, key: str, owner: str, ttl_ms: int) -> None:
        while True:
            await asyncio.sleep(ttl_ms / 1000 / RENEWALS_PER_TTL)
            try:
                renewed = await self.renew(key, owner, ttl_ms)
            except RedisStoreError as exc:
                # Redis may come back before the TTL runs out; the next beat tries again.
                log.warning("lease %s: renewal by %s failed: %s", key, owner, exc)
                continue
            if not renewed:
                log.warning("lease %s: lost by %s (expired or taken)", key, owner)
                return

    async def _release_on_exit(self, key: str, owner: str) -> None:
        try:
            await self.release(key, owner)
        except RedisStoreError as exc:
            # The work under the lease is done; an unreleased lease only expires on its own.
            log.warning("lease %s: release by %s failed, it will expire: %s", key, owner, exc)


def _fact(reply: Any) -> LeaseFact:
    if isinstance(reply, Exception):
        return LeaseFact(error=f"{type(reply).__name__}: {reply}")
    return LeaseFact(owner=str(reply) if reply is not None else None)
