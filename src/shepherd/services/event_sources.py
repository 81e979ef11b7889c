"""Where live events come from: a source is a durable, ordered feed the event hub follows.

A source is followed, not pushed to: every replica's hub reads each source by position, so a
change made by any replica (or by a controller elsewhere) reaches the viewers of every replica,
and a client that reconnects can resume where it stopped. A feature that produces events (the
breaker's circuit changes, the canary's transitions, alerts) adds an ``EventSource`` over its own
durable record (a table followed by id, a Redis stream) and registers it with the hub in
``app/``; the envelope is ``core.events.Event``. Two sources today: ``executions`` (every status
change) and ``fleet`` (every other change of the fleet).

Must not: keep state between calls (the hub holds each source's cursor) or write anything.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from shepherd.core.events import EXECUTIONS_SOURCE, FLEET_SOURCE, Event, transition_event
from shepherd.stores.sql.database import Database


class EventSource(Protocol):
    name: str

    async def head(self) -> int:
        """The position of the newest event (0 for none)."""
        ...

    async def read(self, after: int, limit: int, also: Collection[int] = ()) -> Sequence[Event]:
        """Events after ``after`` (plus the positions in ``also``), oldest first."""
        ...


class ExecutionTransitions:
    """Every status change of every execution: the ``execution_events`` table, by id."""

    name = EXECUTIONS_SOURCE

    def __init__(self, db: Database) -> None:
        self._db = db

    async def head(self) -> int:
        return await self._db.feed.head()

    async def read(self, after: int, limit: int, also: Collection[int] = ()) -> list[Event]:
        return [transition_event(r) for r in await self._db.feed.read(after, limit, also)]


class FleetEvents:
    """Every other change of the fleet (agents, circuits, recoveries, canary, alerts): the
    ``fleet_events`` table, by id. Its producers write it just after each change
    (``stores.sql.fleet_events``); ``core.fleet_events`` lists the types and their fields."""

    name = FLEET_SOURCE

    def __init__(self, db: Database) -> None:
        self._db = db

    async def head(self) -> int:
        return await self._db.fleet_events.head()

    async def read(self, after: int, limit: int, also: Collection[int] = ()) -> list[Event]:
        return await self._db.fleet_events.read(after, limit, also)
