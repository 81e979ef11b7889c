"""The one translation of redis-py errors into ``RedisStoreError``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import RedisError

from shepherd.errors import RedisStoreError


@asynccontextmanager
async def translated(what: str) -> AsyncIterator[None]:
    try:
        yield
    except RedisError as exc:
        raise RedisStoreError(f"redis: {what}: {type(exc).__name__}: {exc}") from exc
