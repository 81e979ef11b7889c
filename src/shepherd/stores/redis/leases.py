"""Leases: a key holding its owner's token with a PX TTL; only the owner renews or releases it.

``hold`` is the heartbeat form: it renews every ttl/3 while the caller works, sets ``lost`` when a
renewal fails (expired, or taken by another after expiry), and releases on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from enum import IntEnum

from redis.asyncio import Redis

from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.scripts import Scripts

log = logging.getLogger("shepherd.stores.redis.leases")


class LeaseResult(IntEnum):
    HELD_BY_OTHER = 0
    ACQUIRED = 1
    ALREADY_OURS = 2


class HeldLease:
    """What ``hold`` yields: truthy when acquired; ``lost`` is set if it slipped away."""

    def __init__(self, acquired: bool) -> None:
        self.acquired = acquired
        self.lost = asyncio.Event()

    def __bool__(self) -> bool:
        return self.acquired


class LeaseStore:
    def __init__(self, client: Redis, scripts: Scripts) -> None:
        self._client = client
        self._scripts = scripts

    async def acquire(self, key: str, owner: str, ttl_ms: int) -> bool:
        async with translated("acquire lease"):
            code = await self._scripts.run("lease_acquire", [key], [owner, ttl_ms])
        return LeaseResult(int(code)) is not LeaseResult.HELD_BY_OTHER

    async def renew(self, key: str, owner: str, ttl_ms: int) -> bool:
        async with translated("renew lease"):
            return bool(await self._scripts.run("lease_renew", [key], [owner, ttl_ms]))

    async def release(self, key: str, owner: str) -> bool:
        async with translated("release lease"):
            return bool(await self._scripts.run("lease_release", [key], [owner]))

    async def owner(self, key: str) -> str | None:
        async with translated("read lease"):
            value = await self._client.get(key)
        return str(value) if value is not None else None

    @contextlib.asynccontextmanager
    async def hold(self, key: str, owner: str, ttl_ms: int) -> AsyncIterator[HeldLease]:
        held = HeldLease(await self.acquire(key, owner, ttl_ms))
        if not held:
            yield held
            return
        heartbeat = asyncio.create_task(self._heartbeat(key, owner, ttl_ms, held))
        try:
            yield held
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            if not held.lost.is_set():
                await asyncio.shield(self.release(key, owner))

    async def _heartbeat(self, key: str, owner: str, ttl_ms: int, held: HeldLease) -> None:
        while True:
            await asyncio.sleep(ttl_ms / 3000)
            if not await self.renew(key, owner, ttl_ms):
                log.warning("lease %s lost by %s", key, owner)
                held.lost.set()
                return
