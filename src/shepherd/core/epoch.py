"""Is this Redis the one the slots were written to? A pure verdict on one reading.

Redis keeps capacity (slots) that SQL does not; if Redis loses its data (FLUSHALL, a restart
without persistence or after an unsynced second of AOF, a failover to a lagging replica), free
slots appear that are in fact taken, and an agent gets overbooked. The *epoch* key holds the
``run_id`` of the server on which the slots were last rebuilt from SQL. Every server start and
every failover changes ``run_id``; a flush deletes the key. So:

- epoch == the server's run_id, and the instance mirror names our SQL store: SEALED, dispatch;
- the instance mirror names another SQL store: FOREIGN, never dispatch (wrong database);
- anything else (epoch missing or from another server): REBUILD the slots from the ``running``
  rows in SQL, re-mirror the instance id, then seal the epoch with the current run_id.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class EpochVerdict(Enum):
    SEALED = "sealed"
    REBUILD = "rebuild"
    FOREIGN = "foreign"


@dataclass(frozen=True, slots=True)
class EpochReading:
    epoch: str | None  # the epoch key; None when absent
    run_id: str  # the server's run_id now
    instance: str | None  # the instance mirror; None when absent


def decide_epoch(reading: EpochReading, instance_id: str) -> EpochVerdict:
    if reading.instance is not None and reading.instance != instance_id:
        return EpochVerdict.FOREIGN
    if reading.instance is None or reading.epoch != reading.run_id:
        return EpochVerdict.REBUILD
    return EpochVerdict.SEALED
