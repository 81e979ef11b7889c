"""The one translation of redis-py errors into ``RedisStoreError``.

Every store method wraps its Redis calls in ``translated(what)``, so nothing above the store sees a
redis-py exception, and every message says which operation failed. Must not: catch anything but
``RedisError`` (``CancelledError`` and programming errors pass through untouched) or retry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import RedisError

from shepherd.errors import RedisStoreError


@asynccontextmanager
async def translated(what: str) -> AsyncIterator[None]:
    """Re-raise a redis-py error inside the block as ``RedisStoreError`` naming ``what``."""
    try:
        yield
    except RedisError as exc:
        raise RedisStoreError(f"redis: {what}: {type(exc).__name__}: {exc}") from exc
