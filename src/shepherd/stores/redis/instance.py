"""The SQL store's instance id, mirrored in Redis: two different ids mean the wrong database."""

from __future__ import annotations

from redis.asyncio import Redis

from shepherd.errors import InstanceMismatch
from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys


async def mirror_instance_id(client: Redis, keys: Keys, instance_id: str) -> None:
    """Record ``instance_id`` in Redis, or raise if Redis already belongs to another store."""
    async with translated("mirror instance id"):
        await client.set(keys.instance(), instance_id, nx=True)
        found = await client.get(keys.instance())
    if found != instance_id:
        raise InstanceMismatch(
            f"Redis carries instance id {found!r} but the SQL store is {instance_id!r}: "
            "this Redis belongs to another Shepherd (check SHEPHERD_REDIS_URL / _REDIS_PREFIX)"
        )


async def read_instance_id(client: Redis, keys: Keys) -> str | None:
    """The instance id Redis carries (None if none was mirrored yet)."""
    async with translated("read instance id"):
        found = await client.get(keys.instance())
    return str(found) if found is not None else None
