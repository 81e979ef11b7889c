"""Maintenance: reclaims capacity slots whose execution is no longer running.

For each agent it reads the slot holders, re-reads each holder's row from SQL, and releases (by
release-if-matches) only slots held past the grace for a row that is not ``running`` — the
decision is ``core.reclaim``. A slot whose hash expired while its row still runs is left for the
reconciler: releasing it would let the agent be overbooked. ``drain:tick_at`` is written at the
END of every successful sweep (invariant B-02 reads it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shepherd.core.clock import Clock
from shepherd.core.reclaim import SlotHolder, decide_reclaim
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database


@dataclass(slots=True)
class MaintenanceReport:
    reclaimed: list[str] = field(default_factory=list)
    swept_agents: int = 0


class Maintenance:
    name = "maintenance"

    def __init__(
        self, db: Database, redis: RedisHandle, clock: Clock, *, reclaim_grace_s: float
    ) -> None:
        self._db = db
        self._redis = redis
        self._clock = clock
        self._grace_ms = int(reclaim_grace_s * 1000)

    async def run_once(self) -> MaintenanceReport:
        report = MaintenanceReport()
        for agent in await self._db.agents.list():
            holders = await self._redis.slots.holders(agent.name)
            if holders:
                await self._reclaim(agent.name, holders, report)
            report.swept_agents += 1
        await self._redis.client.set(self._redis.keys.drain_tick_at(), self._clock.now_ms())
        return report

    async def _reclaim(
        self, agent: str, holders: dict[str, int], report: MaintenanceReport
    ) -> None:
        snapshot = []
        for execution_id, acquired_at_ms in holders.items():
            row = await self._db.executions.find(execution_id)
            snapshot.append(SlotHolder(execution_id, acquired_at_ms, row.status if row else None))
        for execution_id in decide_reclaim(snapshot, self._clock.now_ms(), self._grace_ms):
            if await self._redis.slots.release(agent, execution_id):
                report.reclaimed.append(execution_id)
