"""The epoch key: the ``run_id`` of the Redis server on which the slots were last rebuilt from
SQL (see ``core.epoch``). Reading it is one round trip (the instance mirror, the epoch, and the
server's ``run_id`` from ``INFO server``), cheap enough for every dispatcher pass.

Guarantees: every call is translated (``RedisStoreError``); ``seal`` only ever writes the run_id
it is given, so a seal racing a server change leaves a mismatch the next reading catches.
Must not: decide whether to rebuild (``core.epoch``) or rebuild anything (the dispatcher's
``SlotRecovery`` does, from SQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shepherd.core.epoch import EpochReading
from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys


class EpochStore:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    async def read(self) -> EpochReading:
        async with translated("read epoch"), self._client.pipeline(transaction=False) as pipe:
            queue_epoch_read(pipe, self._keys)
            return epoch_reading(await pipe.execute())

    async def seal(self, run_id: str) -> None:
        async with translated("seal epoch"):
            await self._client.set(self._keys.epoch(), run_id)


# How many replies ``queue_epoch_read`` adds to a pipeline.
EPOCH_REPLIES = 3


def queue_epoch_read(pipe: Pipeline, keys: Keys) -> None:
    """Queue the reading's commands on ``pipe`` (another store's pass may share the trip)."""
    pipe.get(keys.instance())
    pipe.get(keys.epoch())
    pipe.info("server")


def epoch_reading(replies: Sequence[Any]) -> EpochReading:
    """The reading from the ``EPOCH_REPLIES`` replies of ``queue_epoch_read``."""
    instance, epoch, info = replies
    return EpochReading(_text(epoch), str(_server_run_id(info)), _text(instance))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _server_run_id(info: dict[str, Any]) -> str:
    return str(info.get("run_id", ""))
