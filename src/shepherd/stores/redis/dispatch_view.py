"""What a dispatcher pass reads from Redis, in one round trip: the epoch reading (instance
mirror, epoch, the server's ``run_id``), and each agent's health and number of held slots.

Three stores own these keys (``epoch``, ``agent_health``, ``slots``); a pass read them in a trip
each, one more per agent, where the keys allow one pipeline. Each value is read as its own store
reads it (``epoch_reading``, ``healths_of``). The pipeline is not a transaction: the view is what a
pass acts on, and every write it leads to is checked again where it happens (the slot script
against the epoch and the capacity, the claim against the row's status).
Must not: write anything, or decide anything (the dispatcher and ``core.epoch`` do).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from shepherd.core.epoch import EpochReading
from shepherd.stores.redis.agent_health import AgentHealth, healths_of, queue_health_read
from shepherd.stores.redis.epoch import EPOCH_REPLIES, epoch_reading, queue_epoch_read
from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys


@dataclass(frozen=True, slots=True)
class DispatchView:
    epoch: EpochReading
    health: dict[str, AgentHealth]
    held: dict[str, int]  # slots held per agent


async def read_dispatch_view(client: Redis, keys: Keys, agents: Sequence[str]) -> DispatchView:
    async with translated("read dispatch view"), client.pipeline(transaction=False) as pipe:
        queue_epoch_read(pipe, keys)
        queue_health_read(pipe, keys, agents)
        for agent in agents:
            pipe.zcard(keys.slots(agent))
        replies: list[Any] = await pipe.execute()
    health, held = replies[EPOCH_REPLIES:EPOCH_REPLIES + len(agents)], replies[
        EPOCH_REPLIES + len(agents):]
    return DispatchView(
        epoch_reading(replies[:EPOCH_REPLIES]), healths_of(agents, health),
        {agent: int(count) for agent, count in zip(agents, held, strict=True)})
