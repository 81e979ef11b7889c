"""``canary selftest``: prove on a live fleet that each check fires, and clears again.

For every invariant that can be provoked without harm, plant the fault for real (a phantom slot,
a slot without expiry, a terminal row flipped back to running without its event, another
instance id in Redis, a stale controller tick, a key left under a deleted agent), run a cycle of
that one invariant, revert, run it again: it must have fired, then cleared. Ids that cannot be
provoked safely say why. The cycles neither alert nor persist, and the periodic loop skips its
turn while the self-test holds the canary.

Harm is kept away from real work: planted slots name executions that do not exist; a flipped row
is an already finished one, flipped for one cycle; every value changed is put back.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shepherd.canary.invariants import REGISTRY, UNCHECKED
from shepherd.canary.service import CanaryService
from shepherd.core.clock import Clock
from shepherd.core.models import Agent
from shepherd.core.status import ExecutionStatus as S
from shepherd.core.timeouts import slot_ttl_s
from shepherd.stores.redis.canary_probes import CanaryProbes
from shepherd.stores.sql.canary_probes import SqlCanaryProbes
from shepherd.stores.sql.database import Database

PHANTOM = "selftest-phantom"
AGED_MS = 60_000  # planted slots look a minute old: past every race grace
TIMEOUT_S = 60
NOT_PROVOKED: dict[str, str] = {
    **UNCHECKED,
    "E-01": "needs a run older than its timeout + 300 s: cannot be provoked quickly",
    "E-03": "needs a terminal row with broken instants: editing history is not reversible "
            "safely",
    "E-04": "needs a queued row without queued_at: the dispatcher would act on it",
    "E-05": "needs a run unacknowledged for 60 s",
    "E-06": "needs a schedule late by a minute",
    "E-07": "needs a retry row pointing at another agent's execution",
    "E-08": "flipping a cancelled row back to a live status would let a controller act on it",
    "E-09": "needs a run missing from its registry for 60 s",
    "E-10": "needs a finalization hung past the finalize grace",
    "S-05": "needs a finished row still holding a slot: releasing it would race the finalizer",
    "B-01": "the backlog count and the rows come from the same table: no separate counter to "
            "skew",
    "B-02": "needs queued work ignored for a minute",
    "B-05": "needs work queued past max_queue_age",
    "B-06": "needs a backlog over its bound: admission refuses it",
    "L-05": "needs an agent silent for 30 s with a closed circuit",
    "R-01": "needs a runtime that does not reap its children",
    "G-04": "would need a credential stored in an execution",
}


@dataclass(frozen=True, slots=True)
class SelftestRow:
    id: str
    provoked: bool
    fired: bool | None = None
    cleared: bool | None = None
    ms: float = 0.0
    note: str = ""

    @property
    def passed(self) -> bool:
        return not self.provoked or bool(self.fired and self.cleared)


Step = Callable[[], Awaitable[object]]


class Selftest:
    def __init__(
        self, service: CanaryService, db: Database, probes: CanaryProbes,
        sql_probes: SqlCanaryProbes, clock: Clock,
    ) -> None:
        self._service = service
        self._db = db
        self._probes = probes
        self._sql = sql_probes
        self._clock = clock
        self._instance: str | None = None  # the values a provocation replaced, for its revert
        self._tick: tuple[str, int | None] = ("", None)

    async def run(self) -> list[SelftestRow]:
        async with self._service.exclusive():
            agents = await self._db.agents.list(include_deleted=True)
            live = [a for a in agents if a.deleted_at_ms is None and a.enabled]
            deleted = [a for a in agents if a.deleted_at_ms is not None]
            plans = await self._plans(live[0] if live else None, deleted[0] if deleted else None)
            rows = [await self._prove(iid, *plans[iid]) if iid in plans else
                    SelftestRow(iid, False, note=NOT_PROVOKED.get(iid, "no agent to provoke on"))
                    for iid in sorted(REGISTRY)]
        return rows

    async def _prove(self, iid: str, provoke: Step, revert: Step) -> SelftestRow:
        started = time.perf_counter()
        try:
            await provoke()
            fired = iid in await self._fired(iid)
        finally:
            await revert()
        cleared = iid not in await self._fired(iid)
        return SelftestRow(iid, True, fired, cleared,
                           round((time.perf_counter() - started) * 1000, 1))

    async def _fired(self, iid: str) -> set[str]:
        result = await self._service.cycle([iid], alert=False, persist=False)
        return {v.invariant_id for v in result.violations}

    async def _plans(
        self, agent: Agent | None, deleted: Agent | None
    ) -> dict[str, tuple[Step, Step]]:
        plans: dict[str, tuple[Step, Step]] = {
            "G-06": (lambda: self._swap_instance(), lambda: self._restore_instance()),
            "G-02": (lambda: self._stale_tick(), lambda: self._restore_tick()),
        }
        if agent is not None:
            plans.update(self._slot_plans(agent))
            flipped = await self._sql.newest(S.SUCCESS)
            if flipped is not None:
                eid = flipped[0]
                plans["E-02"] = (lambda: self._sql.flip(eid, S.SUCCESS, S.RUNNING),
                                 lambda: self._sql.flip(eid, S.RUNNING, S.SUCCESS))
        if deleted is not None:
            name = deleted.name
            plans["L-03"] = (lambda: self._plant(name, PHANTOM, hash_=False),
                             lambda: self._probes.remove_slot(name, PHANTOM))
        return plans

    def _slot_plans(self, agent: Agent) -> dict[str, tuple[Step, Step]]:
        name = agent.name
        over = [f"{PHANTOM}-{i}" for i in range(agent.max_parallel_tasks + 1)]

        async def overbook() -> None:
            for eid in over:
                await self._plant(name, eid)

        async def unbook() -> None:
            for eid in over:
                await self._probes.remove_slot(name, eid)

        def remove() -> Awaitable[None]:
            return self._probes.remove_slot(name, PHANTOM)
        return {
            "S-01": (lambda: self._plant(name, PHANTOM), remove),
            "S-02": (overbook, unbook),
            "S-03": (lambda: self._plant(name, PHANTOM, ttl=False), remove),
            "S-04": (lambda: self._plant(name, PHANTOM, hash_=False), remove),
        }

    async def _plant(self, agent: str, eid: str, *, hash_: bool = True, ttl: bool = True) -> None:
        await self._probes.plant_slot(agent, eid, self._clock.now_ms() - AGED_MS, TIMEOUT_S,
                                      slot_ttl_s(TIMEOUT_S) if ttl else 0, hash_=hash_)

    async def _swap_instance(self) -> None:
        self._instance = await self._probes.swap_instance("selftest-another-install")

    async def _restore_instance(self) -> None:
        await self._probes.swap_instance(self._instance)

    async def _stale_tick(self) -> None:
        name, interval_s = max(self._service.controller_intervals().items(),
                               key=lambda kv: kv[1], default=("dispatcher", 0.5))
        self._tick = (name, await self._probes.swap_tick(
            name, self._clock.now_ms() - round(100 * interval_s * 1000) - 3_600_000))

    async def _restore_tick(self) -> None:
        await self._probes.swap_tick(*self._tick)
