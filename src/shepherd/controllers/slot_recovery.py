"""Slot recovery: stop dispatching on a Redis that lost its data, rebuild its slots from SQL,
then resume (``core.epoch`` says when).

The dispatcher asks ``ensure()`` at the start of every pass and acquires slots only with the
epoch it returns; the acquire script refuses any other (``STALE_EPOCH``), so a flush between the
check and an acquire can never overbook an agent. A rebuild gives every ``running`` row its slot
back (``core.reclaim.decide_restore``, no capacity check), re-mirrors the SQL instance id, and
only then seals the epoch with the server's current ``run_id``.

Only the dispatcher seals: it is the one writer that adds slots, and it runs the rebuild in its
own pass, so no claim of its own can slip between the rebuild's SQL read and the seal (a slot
acquired before a flush and claimed after it is read as running by the next pass's rebuild).
Maintenance restores missing slots on its own schedule too, without sealing.

What else lived in Redis needs no rebuild: leases are re-taken by their holders (a lost one
reads as free), a lost agent cursor makes the monitor replay the runtime's stream and run a
registry pass, and tick records are rewritten by the next tick.

Must not: dispatch, or seal on a Redis that carries another SQL store's instance id.
"""

from __future__ import annotations

import asyncio
import logging

from shepherd.core.clock import Clock
from shepherd.core.epoch import EpochReading, EpochVerdict, decide_epoch
from shepherd.core.models import Execution
from shepherd.core.reclaim import RunningRow, decide_restore
from shepherd.core.status import ExecutionStatus
from shepherd.errors import InstanceMismatch
from shepherd.log_throttle import LogThrottle
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.redis.instance import mirror_instance_id
from shepherd.stores.sql.database import Database
from shepherd.telemetry import Telemetry

log = logging.getLogger("shepherd.controllers.slot_recovery")
ACTOR = "slot-recovery"


class SlotRecovery:
    def __init__(
        self, db: Database, redis: RedisHandle, clock: Clock, telemetry: Telemetry | None = None
    ) -> None:
        self._db = db
        self._redis = redis
        self._clock = clock
        self._lock = asyncio.Lock()
        self._quiet = LogThrottle(log)
        self._rebuilds = (telemetry or Telemetry()).counter(
            "shepherd_redis_rebuilds", "Slot rebuilds from SQL after Redis lost or changed data."
        )

    async def ensure(self, reading: EpochReading | None = None) -> str | None:
        """The epoch to acquire slots with, after a rebuild if one is due; None: do not
        dispatch (the Redis belongs to another SQL store). ``reading`` is one the caller just
        made (a dispatcher pass reads it with the rest of its view); it is read again when
        another caller held the lock meanwhile, which may have rebuilt since."""
        waited = self._lock.locked()
        async with self._lock:
            if reading is None or waited:
                reading = await self._redis.epoch.read()
            verdict = decide_epoch(reading, self._db.instance_id)
            if verdict is EpochVerdict.FOREIGN:
                self._foreign(reading.instance)
                return None
            if verdict is EpochVerdict.REBUILD:
                return await self._rebuild(reading)
            return reading.epoch

    async def _rebuild(self, reading: EpochReading) -> str | None:
        try:
            await mirror_instance_id(self._redis.client, self._redis.keys, self._db.instance_id)
        except InstanceMismatch as exc:
            self._foreign(str(exc))
            return None
        restored = await self._restore_running()
        await self._redis.epoch.seal(reading.run_id)
        self._rebuilds.inc()
        lost = reading.epoch is not None or restored > 0
        log.log(
            logging.WARNING if lost else logging.INFO,
            "Redis %s: slots rebuilt from SQL (%d running execution(s) given their slot back); "
            "dispatching resumes", _why(reading), restored,
        )
        return reading.run_id

    async def _restore_running(self) -> int:
        rows = await self._db.executions.list_by_status(ExecutionStatus.RUNNING)
        members: dict[str, set[str]] = {
            a: set(await self._redis.slots.holders(a)) for a in {r.agent for r in rows}
        }
        restored = await restore_missing_slots(self._redis, rows, members,
                                               self._clock.now_ms(), ACTOR)
        return len(restored)

    def _foreign(self, detail: str | None) -> None:
        self._quiet.log(
            "foreign", logging.ERROR,
            "Redis belongs to another Shepherd store (%s, ours is %s): not dispatching; check "
            "SHEPHERD_REDIS_URL and SHEPHERD_REDIS_PREFIX", detail, self._db.instance_id,
        )


async def restore_missing_slots(
    redis: RedisHandle, running: list[Execution], members: dict[str, set[str]], now_ms: int,
    holder: str,
) -> list[str]:
    """Give every running row that is not a member of its agent's slots its slot back; the ids
    this call restored (a slot restored meanwhile by someone else is not counted)."""
    wanted = [RunningRow(r.id, r.agent, r.dispatched_at_ms, r.timeout_s) for r in running]
    return [
        slot.execution_id for slot in decide_restore(wanted, members, now_ms)
        if await redis.slots.restore(slot.agent, slot.execution_id,
                                     acquired_at_ms=slot.acquired_at_ms,
                                     timeout_s=slot.timeout_s, holder=holder)
    ]


def _why(reading: EpochReading) -> str:
    if reading.epoch is None:
        return "carries no epoch (first start, or its data was flushed or lost)"
    return f"is not the server the slots were written to (run_id {reading.epoch} -> " \
           f"{reading.run_id})"
