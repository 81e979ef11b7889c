"""The fleet event log: ``fleet_events``, the ordered record of every change of the fleet besides
execution transitions (agents, circuits, recoveries, canary, alerts; ``core.fleet_events``),
which every replica's live followers read by id (``services.event_sources.FleetEvents``).

``record`` is what producers call, just after the change they report has happened. It never
raises: a store that cannot take the row is logged (at most once a minute) and counted in
``shepherd_fleet_events_dropped_total``, and the operation that caused it goes on. An event is
news, not state: a viewer that misses one still reads the state at its next refresh, so an event
lost to a crash between the change and its record costs a late refresh, never a wrong page.
``append`` is the form that raises. Every ``TRIM_EVERY`` ids the writer also drops rows older
than ``RETENTION_MS`` and all but the newest ``MAX_ROWS``, never the row it just wrote, so ids
only grow and a follower's cursor stays valid (AUTOINCREMENT on SQLite as well). Reads take no
write lock on SQLite (``engine.reading``).

Must not: be called inside a transaction of the caller (SQLite runs one connection per process),
nor on the hot execution path (executions have their own record, ``execution_events``); decide
what is worth an event (its producers do).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from sqlalchemy import and_, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shepherd.core.clock import Clock
from shepherd.core.events import FLEET_SOURCE, Event
from shepherd.core.fleet_events import FleetChange
from shepherd.errors import ShepherdError
from shepherd.log_throttle import LogThrottle
from shepherd.stores.sql.engine import reading
from shepherd.stores.sql.errors import translated
from shepherd.stores.sql.tables import fleet_events
from shepherd.telemetry import Telemetry

log = logging.getLogger("shepherd.stores.fleet_events")

# A week: enough for a client to resume after a weekend, and to look back over an incident.
RETENTION_MS = 7 * 86_400_000
# Bounded whatever the age: a fleet flapping for a week still keeps the table small.
MAX_ROWS = 100_000
# One trimming delete per this many events: trimming costs nothing on the other writes.
TRIM_EVERY = 500


class FleetEventLog:
    def __init__(
        self, engine: AsyncEngine, clock: Clock, telemetry: Telemetry | None = None, *,
        retention_ms: int = RETENTION_MS, max_rows: int = MAX_ROWS, trim_every: int = TRIM_EVERY,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._retention_ms = retention_ms
        self._max_rows = max_rows
        self._trim_every = trim_every
        self._quiet = LogThrottle(log)
        self._dropped = (telemetry or Telemetry()).counter(
            "shepherd_fleet_events_dropped",
            "Fleet events not recorded because the SQL store did not take them.",
        )

    async def record(self, *changes: FleetChange) -> None:
        """Append ``changes``; a store failure is logged and counted, never raised."""
        if not changes:
            return
        try:
            await self.append(changes)
        except ShepherdError as exc:
            self._dropped.inc(len(changes))
            self._quiet.log("append", logging.WARNING,
                            "live events: %d fleet event(s) not recorded, the changes stand: %s",
                            len(changes), exc.message)
            return
        if self._quiet.clear("append"):
            log.info("live events: fleet events are recorded again")

    async def append(self, changes: Sequence[FleetChange]) -> list[int]:
        """Append ``changes`` in one transaction, stamped now; their ids, in order."""
        now_ms = self._clock.now_ms()
        ids: list[int] = []
        async with translated("record fleet events"), self._engine.begin() as conn:
            for change in changes:
                new_id = await conn.scalar(insert(fleet_events).values(
                    at_ms=now_ms, type=change.type.value, agent=change.agent,
                    subject=change.subject, data=dict(change.data),
                ).returning(fleet_events.c.id))
                ids.append(int(new_id))
            if ids and ids[-1] // self._trim_every != (ids[0] - 1) // self._trim_every:
                await self._trim(conn, ids[-1], now_ms)
        return ids

    async def _trim(self, conn: AsyncConnection, newest: int, now_ms: int) -> None:
        c = fleet_events.c
        await conn.execute(delete(fleet_events).where(and_(
            c.id < newest,
            or_(c.at_ms < now_ms - self._retention_ms, c.id <= newest - self._max_rows),
        )))

    async def head(self) -> int:
        """The highest id so far (0 for none): where a follower of news only starts."""
        async with translated("read fleet event head"), reading(self._engine) as conn:
            return int(await conn.scalar(select(func.max(fleet_events.c.id))) or 0)

    async def read(self, after: int, limit: int, also: Collection[int] = ()) -> list[Event]:
        """Events with id > ``after`` (and the ids in ``also``), oldest first, at most ``limit``."""
        c = fleet_events.c
        newer = c.id > after
        query = (select(fleet_events).where(or_(newer, c.id.in_(sorted(also))) if also else newer)
                 .order_by(c.id).limit(limit))
        async with translated("read fleet events"), reading(self._engine) as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [Event(type=r["type"], source=FLEET_SOURCE, seq=r["id"], at_ms=r["at_ms"],
                      agent=r["agent"], subject=r["subject"], data=dict(r["data"] or {}))
                for r in rows]
