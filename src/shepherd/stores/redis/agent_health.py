"""What the watchdog knows of each agent's health, kept in Redis so it survives a control-plane
restart and is the same for every replica: since when the agent has not answered, and whether it
is fenced (declared lost, so nothing is dispatched to it until its registry has been reconciled
and its strays terminated).

Guarantees: ``unreachable_since_ms`` is the first miss of the current outage (a later miss never
moves it) and is cleared by the first answer; the fence is set once (``fence`` says whether this
call set it) and lifted only by ``unfence``; both live in ``agent:{agent}:health`` (no TTL),
which deleting the agent deletes.
Must not: decide when an agent is lost (``core.watchdog``) or retry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys
from shepherd.stores.redis.scripts import Scripts

SINCE = "unreachable_since_ms"
LOST_AT = "lost_at_ms"


class UnreachableResult(IntEnum):
    """Return codes of health_unreachable.lua."""

    ALREADY = 0
    NEWLY = 1


class ReachableResult(IntEnum):
    """Return codes of health_reachable.lua."""

    WAS_REACHABLE = 0
    CAME_BACK = 1


@dataclass(frozen=True, slots=True)
class AgentHealth:
    unreachable_since_ms: int | None = None
    lost_at_ms: int | None = None  # set: fenced

    @property
    def fenced(self) -> bool:
        return self.lost_at_ms is not None


class AgentHealthStore:
    def __init__(self, client: Redis, keys: Keys, scripts: Scripts) -> None:
        self._client = client
        self._keys = keys
        self._scripts = scripts

    async def mark_unreachable(self, agent: str, now_ms: int) -> int:
        """Record a miss; returns when the current outage began."""
        async with translated("mark agent unreachable"):
            code, since = await self._scripts.run(
                "health_unreachable", [self._keys.agent_health(agent)], [now_ms]
            )
        UnreachableResult(int(code))
        return int(since)

    async def mark_reachable(self, agent: str) -> int | None:
        """Record an answer; returns when the outage it ends began (None: there was none)."""
        async with translated("mark agent reachable"):
            code, since = await self._scripts.run(
                "health_reachable", [self._keys.agent_health(agent)], []
            )
        if ReachableResult(int(code)) is ReachableResult.CAME_BACK:
            return int(since)
        return None

    async def restart_outage(self, agent: str, now_ms: int) -> None:
        """Count an ongoing outage from ``now``: a fleet-wide fault is not the agent's."""
        async with translated("restart outage clock"):
            await self._client.hset(self._keys.agent_health(agent), SINCE, now_ms)

    async def fence(self, agent: str, now_ms: int) -> bool:
        """Stop dispatching to a lost agent; True only when this call set the fence."""
        async with translated("fence agent"):
            return bool(await self._client.hsetnx(self._keys.agent_health(agent), LOST_AT, now_ms))

    async def unfence(self, agent: str) -> bool:
        """Lift the fence; True only when there was one."""
        async with translated("unfence agent"):
            return bool(await self._client.hdel(self._keys.agent_health(agent), LOST_AT))

    async def read(self, agents: Sequence[str]) -> dict[str, AgentHealth]:
        """The health of each agent (an agent never seen unhealthy reads as healthy)."""
        if not agents:
            return {}
        async with translated("read agent health"), self._client.pipeline(
            transaction=False
        ) as pipe:
            queue_health_read(pipe, self._keys, agents)
            return healths_of(agents, await pipe.execute())


def queue_health_read(pipe: Pipeline, keys: Keys, agents: Sequence[str]) -> None:
    """Queue one reply per agent on ``pipe`` (another store's pass may share the trip)."""
    for agent in agents:
        pipe.hgetall(keys.agent_health(agent))


def healths_of(agents: Sequence[str], replies: Sequence[Any]) -> dict[str, AgentHealth]:
    """Each agent's health from the replies of ``queue_health_read``."""
    raw = cast("Sequence[dict[str, Any]]", replies)
    return {agent: _health(fields) for agent, fields in zip(agents, raw, strict=True)}


def _health(fields: dict[str, Any]) -> AgentHealth:
    since, lost = fields.get(SINCE), fields.get(LOST_AT)
    return AgentHealth(int(since) if since is not None else None,
                       int(lost) if lost is not None else None)
