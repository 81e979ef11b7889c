"""Maintenance: keeps each agent's capacity slots equal to its running executions (S-01, S-04).

Every pass, for each agent, it reads the slot holders, re-reads their rows from SQL, and asks
``core.reclaim``:
- it releases (by release-if-matches) slots held past the grace for a row that is not
  ``running``, that does not exist, or that belongs to another agent, whatever the slot's score
  says (a score in the future is as old as its distance from now);
- it restores the slot of every ``running`` row that has none, so capacity Redis lost (a flush, a
  restart, a failover, a race with one) is never handed out twice;
- it deletes slot hashes whose member is gone (with or without a TTL).
A slot whose hash expired while its row still runs is kept: releasing it would overbook the agent.
``drain:tick_at`` is written at the END of every successful sweep (invariant B-02 reads it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from shepherd.controllers.slot_recovery import restore_missing_slots
from shepherd.core.clock import Clock
from shepherd.core.models import Execution
from shepherd.core.reclaim import SlotHolder, decide_reclaim
from shepherd.core.status import ExecutionStatus
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database

log = logging.getLogger("shepherd.controllers.maintenance")
ACTOR = "maintenance"
# A log line names this many restored executions at most; the report has them all.
LOGGED_IDS = 10


@dataclass(slots=True)
class MaintenanceReport:
    reclaimed: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    orphan_hashes: list[str] = field(default_factory=list)
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
        # Slots first, rows second: a run that ends in between is then absent from both, never
        # "running without a slot"; one that starts in between already holds its slot.
        holders: dict[str, dict[str, int]] = {
            a.name: await self._redis.slots.holders(a.name) for a in await self._db.agents.list()
        }
        running: dict[str, Execution] = {r.id: r for r in await self._db.executions.list_by_status(
            ExecutionStatus.RUNNING)}
        for agent, held in holders.items():
            if held:
                await self._reclaim(agent, held, running, report)
            report.swept_agents += 1
        members = {agent: set(held) - set(report.reclaimed) for agent, held in holders.items()}
        await self._restore(list(running.values()), members, report)
        await self._release_orphan_hashes(members, report)
        await self._redis.ticks.record_drain(self._clock.now_ms())
        return report

    async def _reclaim(
        self, agent: str, holders: dict[str, int], running: dict[str, Execution],
        report: MaintenanceReport,
    ) -> None:
        snapshot = []
        for execution_id, acquired_at_ms in holders.items():
            row = running.get(execution_id) or await self._db.executions.find(execution_id)
            snapshot.append(SlotHolder(execution_id, acquired_at_ms,
                                       row.status if row else None, row.agent if row else None))
        for execution_id in decide_reclaim(snapshot, agent, self._clock.now_ms(), self._grace_ms):
            if await self._redis.slots.release(agent, execution_id):
                report.reclaimed.append(execution_id)

    async def _restore(
        self, running: list[Execution], members: dict[str, set[str]], report: MaintenanceReport
    ) -> None:
        report.restored = await restore_missing_slots(self._redis, running, members,
                                                      self._clock.now_ms(), ACTOR)
        if report.restored:
            shown = ", ".join(report.restored[:LOGGED_IDS])
            more = len(report.restored) - LOGGED_IDS
            log.warning("maintenance: %d running execution(s) had no slot; restored: %s%s",
                        len(report.restored), shown, f" and {more} more" if more > 0 else "")

    async def _release_orphan_hashes(
        self, members: dict[str, set[str]], report: MaintenanceReport
    ) -> None:
        for agent, execution_id in await self._redis.slots.hashes():
            if execution_id in members.get(agent, set()):
                continue  # held as read this pass; the script re-checks the others atomically
            if await self._redis.slots.release_orphan_hash(agent, execution_id):
                report.orphan_hashes.append(execution_id)
