"""The epoch key: the ``run_id`` of the Redis server on which the slots were last rebuilt from
SQL (see ``core.epoch``). Reading it is one round trip (the instance mirror, the epoch, and the
server's ``run_id`` from ``INFO server``), cheap enough for every dispatcher pass.

Guarantees: every call is translated (``RedisStoreError``); ``seal`` only ever writes the run_id
it is given, so a seal racing a server change leaves a mismatch the next reading catches.
Must not: decide whether to rebuild (``core.epoch``) or rebuild anything (the dispatcher's
``SlotRecovery`` does, from SQL).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from shepherd.core.epoch import EpochReading
from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys


class EpochStore:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    async def read(self) -> EpochReading:
        async with translated("read epoch"), self._client.pipeline(transaction=False) as pipe:
            pipe.get(self._keys.instance())
            pipe.get(self._keys.epoch())
            pipe.info("server")
            instance, epoch, info = await pipe.execute()
        return EpochReading(_text(epoch), str(_server_run_id(info)), _text(instance))

    async def seal(self, run_id: str) -> None:
        async with translated("seal epoch"):
            await self._client.set(self._keys.epoch(), run_id)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _server_run_id(info: dict[str, Any]) -> str:
    return str(info.get("run_id", ""))
