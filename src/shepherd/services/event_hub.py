"""The event hub: one follower of every event source per replica, fanned out to its subscribers.

Why follow the stores rather than publish from the writers: a transition may be made by any
replica or controller, and the one durable, ordered record of it is its ``execution_events`` row.
Following that record by id reaches every replica's viewers without touching the writers, misses
nothing that committed (holes are waited for, see ``core.feed``), and lets a client that
reconnects resume from the last id it saw. (Redis pub/sub would need every writer to publish
after its commit, and drops whatever is published while a subscriber reconnects.)

Cost, flat in the number of viewers: while at least one subscriber listens, the hub reads each
source once per interval (one indexed query returning only the new rows); with nobody listening
it reads nothing. Each read becomes one ``Batch`` handed, as the same object, to every
subscriber; a sender serializes a batch once per distinct filter (memoized on the batch), never
once per event per client.

Coalescing: the events of an interval travel as one batch, so a client gets at most one message
per interval however fast transitions come. A subscriber that falls behind (its queue holds
``queue_batches`` unsent batches) loses them and gets one ``Gap`` instead, telling it to re-read
the current state; the hub never waits for a slow subscriber.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from shepherd.core.clock import Clock
from shepherd.core.events import Event
from shepherd.core.feed import FeedCursor, advance_cursor
from shepherd.errors import StoreError
from shepherd.services.event_sources import EventSource
from shepherd.telemetry import Telemetry

log = logging.getLogger("shepherd.services.event_hub")
T = TypeVar("T")

# One read returns at most this many events per source; a full read is followed by another at
# once, so a burst drains at the store's speed rather than one read per interval.
READ_LIMIT = 2_000
# Unsent batches a subscriber may hold: ten seconds at the default interval.
QUEUE_BATCHES = 50
# A resuming client is replayed at most this many events; further behind, it re-reads state.
REPLAY_LIMIT = 5_000


@dataclass(frozen=True, slots=True)
class EventFilter:
    scope: str | None = None  # the token's agent scope: it sees that agent's events only
    agent: str | None = None  # asked for one agent
    types: frozenset[str] | None = None  # asked for these types only

    def accepts(self, event: Event) -> bool:
        if not event.visible_to(self.scope):
            return False
        if self.agent is not None and event.agent != self.agent:
            return False
        return self.types is None or event.type in self.types


@dataclass(eq=False)
class Batch:
    """The events of one read, and each source's position after it."""

    events: tuple[Event, ...]
    cursor: Mapping[str, int]
    _memo: dict[object, Any] = field(default_factory=dict, repr=False)

    def memo(self, key: object, make: Callable[[], T]) -> T:
        """``make()`` once per key for this batch: one serialization per filter, not per client."""
        if key not in self._memo:
            self._memo[key] = make()
        found: T = self._memo[key]
        return found

    def select(self, wanted: EventFilter) -> tuple[Event, ...]:
        return self.memo(("select", wanted), lambda: tuple(e for e in self.events
                                                           if wanted.accepts(e)))


@dataclass(frozen=True, slots=True)
class Gap:
    """Events were dropped for this subscriber: re-read the current state, then carry on."""

    cursor: Mapping[str, int]
    reason: str


class Subscription:
    def __init__(self, wanted: EventFilter, queue_batches: int) -> None:
        self.filter = wanted
        self._queue: deque[Batch | Gap] = deque()
        self._ready = asyncio.Event()
        self._limit = queue_batches
        self._replayed: dict[str, set[int]] = {}
        self.gaps = 0

    def deliver(self, batch: Batch, hub_cursor: Mapping[str, int]) -> bool:
        """Queue ``batch`` without waiting; False when it overflowed into a ``Gap``."""
        if self._replayed:
            batch = self._without_replayed(batch)
            if not batch.events:
                return True
        if len(self._queue) >= self._limit:
            self._queue.clear()
            self._queue.append(Gap(dict(hub_cursor), "fell behind the live stream"))
            self.gaps += 1
            self._ready.set()
            return False
        self._queue.append(batch)
        self._ready.set()
        return True

    def start_with(self, first: Batch | Gap, replayed: Mapping[str, set[int]]) -> None:
        """Put a replay (or a gap) before whatever arrived live meanwhile, without duplicates."""
        self._replayed = dict(replayed)
        live = [item if isinstance(item, Gap) else self._without_replayed(item)
                for item in self._queue]
        self._queue = deque([first, *(i for i in live if isinstance(i, Gap) or i.events)])
        self._ready.set()

    def _without_replayed(self, batch: Batch) -> Batch:
        kept = tuple(e for e in batch.events if e.seq not in self._replayed.get(e.source, ()))
        return batch if len(kept) == len(batch.events) else Batch(kept, batch.cursor)

    async def next(self) -> Batch | Gap:
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()


class EventHub:
    def __init__(
        self,
        sources: Iterable[EventSource],
        clock: Clock,
        interval_s: float,
        *,
        read_limit: int = READ_LIMIT,
        queue_batches: int = QUEUE_BATCHES,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._sources = {s.name: s for s in sources}
        self._clock = clock
        self._interval_s = interval_s
        self._read_limit = read_limit
        self._queue_batches = queue_batches
        self._subscribers: set[Subscription] = set()
        self._cursors: dict[str, FeedCursor] | None = None  # None while nobody listens
        self._activation = asyncio.Lock()
        self._listening = asyncio.Event()
        telemetry = telemetry or Telemetry()
        self._read = telemetry.counter("shepherd_live_events_read", "Events read by the hub.")
        self._gaps = telemetry.counter(
            "shepherd_live_subscriber_gaps", "Live subscribers that fell behind and were resynced."
        )

    def add_source(self, source: EventSource) -> None:
        """Register a feature's source (before ``run``, from ``app/``)."""
        self._sources[source.name] = source

    @property
    def source_names(self) -> frozenset[str]:
        return frozenset(self._sources)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def cursor(self) -> dict[str, int]:
        return {name: c.last_seq for name, c in (self._cursors or {}).items()}

    async def subscribe(
        self, wanted: EventFilter, resume: Mapping[str, int] | None = None,
        replay_limit: int = REPLAY_LIMIT,
    ) -> Subscription:
        """A live subscription; with ``resume`` (source -> last seq seen), missed events first."""
        await self._activate()
        sub = Subscription(wanted, self._queue_batches)
        self._subscribers.add(sub)
        self._listening.set()
        if resume:
            try:
                sub.start_with(*await self._replay(resume, replay_limit))
            except BaseException:
                self.unsubscribe(sub)
                raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)
        if not self._subscribers:
            self._listening.clear()
            self._cursors = None  # idle: the next subscriber starts from the news

    async def _activate(self) -> None:
        async with self._activation:
            if self._cursors is None:
                heads = {name: await s.head() for name, s in self._sources.items()}
                self._cursors = {name: FeedCursor(head) for name, head in heads.items()}

    async def _replay(
        self, resume: Mapping[str, int], limit: int
    ) -> tuple[Batch | Gap, dict[str, set[int]]]:
        events: list[Event] = []
        for name, after in resume.items():
            found = list(await self._sources[name].read(after, limit + 1))
            if len(found) > limit:
                return Gap(self.cursor(), f"more than {limit} events to replay"), {}
            events.extend(found)
        replayed: dict[str, set[int]] = {}
        for event in events:
            replayed.setdefault(event.source, set()).add(event.seq)
        cursor = {**self.cursor(), **{n: max(s) for n, s in replayed.items()}}
        return Batch(tuple(events), cursor), replayed

    async def run(self) -> None:
        """Follow the sources while anyone listens; the guarded task around this restarts it."""
        while True:
            await self._listening.wait()
            more = False
            try:
                more = await self.poll_once()
            except StoreError as exc:
                log.warning("live events: reading the sources failed: %s", exc.message)
            if not more:
                await asyncio.sleep(self._interval_s)

    async def poll_once(self) -> bool:
        """Read every source once and deliver what is new; True when a read came back full."""
        cursors = self._cursors
        if cursors is None:
            return False
        events: list[Event] = []
        full = False
        for name, source in self._sources.items():
            cursor = cursors.get(name) or FeedCursor(await source.head())
            found = await source.read(cursor.last_seq, self._read_limit, also=cursor.gaps.keys())
            full = full or len(found) >= self._read_limit
            cursors[name] = advance_cursor(cursor, [e.seq for e in found], self._clock.now_ms())
            events.extend(found)
        if events and self._cursors is cursors:
            self._read.inc(len(events))
            self._publish(Batch(tuple(events), self.cursor()))
        return full

    def _publish(self, batch: Batch) -> None:
        cursor = batch.cursor
        for sub in list(self._subscribers):
            if not sub.deliver(batch, cursor):
                self._gaps.inc()


def parse_resume(text: str, known: Sequence[str] | frozenset[str]) -> dict[str, int]:
    """``executions:120,alerts:7`` -> {"executions": 120, "alerts": 7}.

    ValueError names the part that is wrong."""
    resume: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, seq = part.partition(":")
        if name not in known:
            raise ValueError(f"unknown event source {name!r} (known: {', '.join(sorted(known))})")
        if not seq.isdigit():
            raise ValueError(f"{part!r}: expected <source>:<seq> with a non-negative integer seq")
        resume[name] = int(seq)
    return resume
