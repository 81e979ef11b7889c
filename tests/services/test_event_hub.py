"""The event hub over a real store: one read per interval whatever the number of subscribers,
nothing read while nobody listens, batches, scope, overflow into a gap, resume without
duplicates, rows that commit below the cursor, and the fleet source beside the executions."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import pytest
from sqlalchemy import insert

from shepherd.core.circuit import CircuitState, TransitionKind
from shepherd.core.clock import ManualClock
from shepherd.core.events import Event
from shepherd.core.fleet_events import canary_changed, circuit_changed
from shepherd.core.ids import AgentName
from shepherd.core.models import Execution, Trigger
from shepherd.services.event_hub import Batch, EventFilter, EventHub, Gap, parse_resume
from shepherd.services.event_sources import ExecutionTransitions, FleetEvents
from shepherd.stores.sql.database import Database
from shepherd.stores.sql.tables import execution_events


@dataclass
class Counted:
    """The real source, with a count of its reads (the cost the hub must keep flat)."""

    inner: ExecutionTransitions
    reads: int = 0
    name: str = field(default="executions")

    async def head(self) -> int:
        return await self.inner.head()

    async def read(self, after: int, limit: int, also: Collection[int] = ()) -> Sequence[Event]:
        self.reads += 1
        return await self.inner.read(after, limit, also)


@pytest.fixture
async def source(db: Database) -> Counted:
    for name in ("a", "b"):
        await db.agents.create(name=AgentName(name), url=None, command=None)
    return Counted(ExecutionTransitions(db))


def hub_over(source: Counted, clock: ManualClock, **kw: int) -> EventHub:
    return EventHub([source], clock, interval_s=0.01, **kw)


async def submit(db: Database, agent: str = "a") -> Execution:
    return await db.executions.submit(agent=AgentName(agent), input="", trigger=Trigger.API,
                                      created_by="t")


async def next_batch(sub: object) -> Batch:
    item = await asyncio.wait_for(sub.next(), 2)  # type: ignore[attr-defined]
    assert isinstance(item, Batch)
    return item


async def test_nobody_listening_means_nothing_is_read(
    source: Counted, clock: ManualClock, db: Database
) -> None:
    hub = hub_over(source, clock)
    await submit(db)
    assert await hub.poll_once() is False
    assert source.reads == 0 and hub.cursor() == {}


async def test_one_read_serves_every_subscriber_with_one_shared_batch(
    source: Counted, clock: ManualClock, db: Database
) -> None:
    hub = hub_over(source, clock)
    subs = [await hub.subscribe(EventFilter()) for _ in range(50)]
    rows = [await submit(db) for _ in range(3)]
    await hub.poll_once()
    assert source.reads == 1
    batches = [await next_batch(s) for s in subs]
    assert all(b is batches[0] for b in batches)
    assert [e.subject for e in batches[0].events] == [r.id for r in rows]
    assert batches[0].cursor == {"executions": batches[0].events[-1].seq} == hub.cursor()
    made: list[int] = []
    for _ in subs:
        batches[0].memo("json", lambda: made.append(1))
    assert made == [1]


async def test_a_scoped_or_filtered_subscriber_sees_only_what_it_asked_for(
    source: Counted, clock: ManualClock, db: Database
) -> None:
    hub = hub_over(source, clock)
    scoped = await hub.subscribe(EventFilter(scope="b"))
    other_type = await hub.subscribe(EventFilter(types=frozenset({"alert.fired"})))
    await submit(db, "a")
    on_b = await submit(db, "b")
    await hub.poll_once()
    batch = await next_batch(scoped)
    assert [e.subject for e in batch.select(scoped.filter)] == [on_b.id]
    assert (await next_batch(other_type)).select(other_type.filter) == ()


async def test_a_subscriber_that_falls_behind_gets_one_gap_instead_of_its_backlog(
    source: Counted, clock: ManualClock, db: Database
) -> None:
    hub = hub_over(source, clock, queue_batches=2)
    slow = await hub.subscribe(EventFilter())
    for _ in range(3):
        await submit(db)
        await hub.poll_once()
    gap = await slow.next()
    assert isinstance(gap, Gap) and gap.cursor == hub.cursor()
    assert slow.gaps == 1
    await submit(db)
    await hub.poll_once()
    assert len((await next_batch(slow)).events) == 1  # then it carries on live


async def test_resuming_replays_what_was_missed_and_nothing_twice(
    source: Counted, clock: ManualClock, db: Database
) -> None:
    hub = hub_over(source, clock)
    await hub.subscribe(EventFilter())  # someone already listens: the hub follows from here
    missed = await submit(db)
    after = (await db.feed.read(0, 10))[-1].event.seq
    meanwhile = await submit(db)  # not polled yet: both replayed, and then read live
    back = await hub.subscribe(EventFilter(), resume={"executions": after - 1})
    await hub.poll_once()
    replay = await next_batch(back)
    assert [e.subject for e in replay.events] == [missed.id, meanwhile.id]
    with pytest.raises(TimeoutError):  # the live read brought the same two: not sent again
        await asyncio.wait_for(back.next(), 0.1)


async def test_resuming_too_far_back_is_a_gap(
    source: Counted, clock: ManualClock, db: Database
) -> None:
    hub = hub_over(source, clock)
    for _ in range(4):
        await submit(db)
    sub = await hub.subscribe(EventFilter(), resume={"executions": 0}, replay_limit=3)
    first = await sub.next()
    assert isinstance(first, Gap) and "more than 3" in first.reason


async def test_a_row_that_commits_below_the_cursor_is_still_delivered(
    source: Counted, clock: ManualClock, db: Database
) -> None:
    hub = hub_over(source, clock)
    sub = await hub.subscribe(EventFilter())
    row = await submit(db)
    await hub.poll_once()
    head = (await next_batch(sub)).events[-1].seq

    async def commit_event(seq: int) -> None:
        async with db.engine.begin() as conn:
            await conn.execute(insert(execution_events).values(
                id=seq, execution_id=row.id, from_status="queued", to_status="running",
                cause="dispatch", actor=f"writer-{seq}", at_ms=clock.now_ms()))

    await commit_event(head + 2)  # the writer holding head + 1 has not committed yet
    await hub.poll_once()
    assert [e.seq for e in (await next_batch(sub)).events] == [head + 2]
    await commit_event(head + 1)
    await hub.poll_once()
    assert [e.seq for e in (await next_batch(sub)).events] == [head + 1]


async def test_the_last_subscriber_leaving_stops_reading_and_the_next_starts_from_news(
    source: Counted, clock: ManualClock, db: Database
) -> None:
    hub = hub_over(source, clock)
    first = await hub.subscribe(EventFilter())
    hub.unsubscribe(first)
    assert hub.cursor() == {} and hub.subscribers == 0
    await submit(db)  # nobody hears this one
    again = await hub.subscribe(EventFilter())
    await hub.poll_once()
    fresh = await submit(db)
    await hub.poll_once()
    assert [e.subject for e in (await next_batch(again)).events] == [fresh.id]


async def test_the_follow_loop_delivers_while_someone_listens(
    source: Counted, clock: ManualClock, db: Database
) -> None:
    hub = hub_over(source, clock)
    loop = asyncio.create_task(hub.run())
    try:
        sub = await hub.subscribe(EventFilter())
        row = await submit(db)
        assert [e.subject for e in (await next_batch(sub)).events] == [row.id]
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("", {}), ("executions:12", {"executions": 12}), (" executions:0 ,", {"executions": 0})],
)
def test_a_resume_cursor_is_read_from_text(text: str, parsed: dict[str, int]) -> None:
    assert parse_resume(text, {"executions"}) == parsed


@pytest.mark.parametrize(
    ("text", "complaint"),
    [("alerts:3", "unknown event source 'alerts'"), ("executions:x", "non-negative integer"),
     ("executions", "non-negative integer")],
)
def test_a_bad_resume_cursor_says_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_resume(text, frozenset({"executions"}))


async def test_changes_made_by_another_replica_reach_this_one(
    db: Database, sql_url: str, clock: ManualClock
) -> None:
    """Another control plane, on the same stores, makes the transition; this hub hears it."""
    from shepherd.stores.sql.database import open_database

    await db.agents.create(name=AgentName("a"), url=None, command=None)
    hub = EventHub([ExecutionTransitions(db)], clock, interval_s=0.01)
    sub = await hub.subscribe(EventFilter())
    other = await open_database(sql_url, clock)
    try:
        row = await other.executions.submit(agent=AgentName("a"), input="", trigger=Trigger.API,
                                            created_by="replica-b")
    finally:
        await other.close()
    await hub.poll_once()
    assert [e.subject for e in (await next_batch(sub)).events] == [row.id]


# -- the fleet source ----------------------------------------------------------------------------


def both_sources(db: Database, clock: ManualClock) -> EventHub:
    return EventHub([ExecutionTransitions(db), FleetEvents(db)], clock, interval_s=0.01)


async def test_fleet_changes_arrive_beside_transitions_and_scoped_tokens_miss_fleet_wide_ones(
    source: Counted, clock: ManualClock, db: Database
) -> None:
    hub = both_sources(db, clock)
    everything = await hub.subscribe(EventFilter())
    only_a = await hub.subscribe(EventFilter(scope="a"))
    circuits = await hub.subscribe(EventFilter(types=frozenset({"circuit.changed"})))
    await db.fleet_events.record(
        circuit_changed("a", TransitionKind.OPENED, CircuitState.OPEN, "down", "r1"),
        canary_changed("S-01", True, severity="critical", tier="A", title="slots",
                       violations=1, message="x"))
    await db.agents.update("b", actor="ops", enabled=False)
    row = await submit(db, "a")
    await hub.poll_once()
    batch = await next_batch(everything)
    assert [(e.source, e.type, e.subject) for e in batch.events] == [
        ("executions", "execution.transition", row.id),
        ("fleet", "circuit.changed", "a"), ("fleet", "canary.changed", "S-01"),
        ("fleet", "agent.changed", "b")]
    assert batch.cursor == hub.cursor() == {"executions": batch.events[0].seq,
                                            "fleet": batch.events[-1].seq}
    assert [e.type for e in (await next_batch(only_a)).select(only_a.filter)] == [
        "execution.transition", "circuit.changed"]
    assert [e.agent for e in (await next_batch(circuits)).select(circuits.filter)] == ["a"]


async def test_a_client_resumes_fleet_events_from_their_own_seq(
    clock: ManualClock, db: Database
) -> None:
    hub = both_sources(db, clock)
    await db.agents.create(name=AgentName("x"), url=None, command=None)
    [created] = await db.fleet_events.read(0, 10)
    await db.agents.delete("x", actor="ops", now_ms=clock.now_ms())
    sub = await hub.subscribe(EventFilter(), resume={"fleet": created.seq})
    replay = await next_batch(sub)
    assert [(e.source, e.data["change"]) for e in replay.events] == [("fleet", "deleted")]


async def test_a_fleet_change_made_by_another_replica_reaches_this_one(
    db: Database, sql_url: str, clock: ManualClock
) -> None:
    from shepherd.stores.sql.database import open_database

    hub = both_sources(db, clock)
    sub = await hub.subscribe(EventFilter())
    other = await open_database(sql_url, clock)
    try:
        await other.agents.create(name=AgentName("z"), url=None, command=None, actor="b")
    finally:
        await other.close()
    await hub.poll_once()
    [event] = (await next_batch(sub)).events
    assert (event.type, event.agent, event.data["change"], event.data["actor"]) == (
        "agent.changed", "z", "created", "b")
