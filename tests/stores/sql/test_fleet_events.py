"""The fleet event log on SQLite and PostgreSQL: ordered reads by id, holes, a trim that keeps ids
growing, a record that never fails its caller, agent changes recorded by the repository, and
followers' reads that wait for no writer."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import pytest
from sqlalchemy import event, make_url, text

from shepherd.core.circuit import CircuitState, TransitionKind
from shepherd.core.clock import ManualClock
from shepherd.core.events import FLEET_SOURCE
from shepherd.core.fleet_events import (
    FleetChange,
    RecoveryAction,
    canary_changed,
    circuit_changed,
    recovery_action,
)
from shepherd.core.ids import AgentName
from shepherd.core.models import Trigger
from shepherd.errors import Conflict
from shepherd.stores.sql.database import Database
from shepherd.stores.sql.fleet_events import FleetEventLog
from shepherd.telemetry import Telemetry

DAY_MS = 86_400_000


def opened(agent: str = "a") -> FleetChange:
    return circuit_changed(agent, TransitionKind.OPENED, CircuitState.OPEN, "3 failures", "r1")


async def test_events_are_read_back_in_order_with_their_fields(db: Database) -> None:
    assert await db.fleet_events.head() == 0
    await db.fleet_events.record(opened())
    red = canary_changed("S-01", True, severity="critical", tier="A", title="slots",
                         violations=2, message="slot held by nobody")
    await db.fleet_events.record(red)
    events = await db.fleet_events.read(0, 10)
    assert [(e.type, e.source, e.agent, e.subject) for e in events] == [
        ("circuit.changed", FLEET_SOURCE, "a", "a"), ("canary.changed", FLEET_SOURCE, None, "S-01")]
    assert events[0].data == {"kind": "opened", "state": "open", "reason": "3 failures",
                              "by": "r1"}
    assert events[1].data["state"] == "red" and events[1].data["violations"] == 2
    assert events[0].at_ms == db.clock.now_ms()
    assert await db.fleet_events.head() == events[1].seq > events[0].seq
    assert await db.fleet_events.read(events[1].seq, 10) == []
    assert [e.seq for e in await db.fleet_events.read(0, 1)] == [events[0].seq]


async def test_a_read_also_fetches_the_holes_it_is_asked_for(db: Database) -> None:
    first, second, third = await db.fleet_events.append([opened(x) for x in "abc"])
    found = await db.fleet_events.read(third, 10, also=[first, third + 7])
    assert [e.seq for e in found] == [first]
    assert second == first + 1


async def test_the_trim_drops_old_and_surplus_rows_and_ids_keep_growing(
    db: Database, clock: ManualClock
) -> None:
    log = FleetEventLog(db.engine, clock, retention_ms=DAY_MS, max_rows=3, trim_every=4)
    ids = await log.append([opened() for _ in range(3)])
    clock.advance(2 * DAY_MS / 1000)  # the first three are now older than the retention
    ids += await log.append([opened()])
    assert [e.seq for e in await log.read(0, 100)] == [ids[-1]]  # the new row always stays
    more = await log.append([opened() for _ in range(8)])
    # One append crossing a multiple of 4 trims once, to the newest three.
    assert [e.seq for e in await log.read(0, 100)] == more[-3:]
    assert min(more) > max(ids)
    async with db.engine.begin() as conn:  # even with everything gone, ids are never reused
        await conn.execute(text("DELETE FROM fleet_events"))
    [after_wipe] = await log.append([opened()])
    assert after_wipe > more[-1]


async def test_a_record_the_store_refuses_is_logged_and_counted_never_raised(
    db: Database, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    telemetry = Telemetry()
    log = FleetEventLog(db.engine, clock, telemetry)
    async with db.engine.begin() as conn:
        await conn.execute(text("DROP TABLE fleet_events"))
    with caplog.at_level(logging.WARNING, "shepherd.stores.fleet_events"):
        await log.record(opened(), opened())
        await log.record(opened())
    lines = [r for r in caplog.records if "not recorded" in r.getMessage()]
    assert len(lines) == 1  # said once, not per event
    dropped = telemetry.registry.get_sample_value("shepherd_fleet_events_dropped_total")
    assert dropped == 3


async def test_agent_changes_are_recorded_with_who_made_them(db: Database) -> None:
    await db.agents.create(name=AgentName("a"), url=None, command=None, actor="ops")
    await db.agents.update("a", actor="ops", max_parallel_tasks=5, tags=["gpu"])
    await db.agents.update("a")  # nothing asked: nothing changed, nothing said
    await db.executions.submit(agent=AgentName("a"), input="", trigger=Trigger.API,
                               created_by="t")
    await db.agents.delete("a", actor="ops", now_ms=db.clock.now_ms())
    events = await db.fleet_events.read(0, 10)
    assert [(e.type, e.subject, e.data["change"], e.data["actor"]) for e in events] == [
        ("agent.changed", "a", "created", "ops"), ("agent.changed", "a", "updated", "ops"),
        ("agent.changed", "a", "deleted", "ops")]
    assert events[0].data["generation"] == 1
    assert events[1].data["fields"] == ["max_parallel_tasks", "tags"]
    assert events[2].data["cancelled"] == 1


async def test_a_refused_delete_records_nothing(db: Database) -> None:
    await db.agents.create(name=AgentName("a"), url=None, command=None)
    row = await db.executions.submit(agent=AgentName("a"), input="", trigger=Trigger.API,
                                     created_by="t")
    await db.executions.claim_queued(row.id, 1, "dispatcher")
    head = await db.fleet_events.head()
    with pytest.raises(Conflict):
        await db.agents.delete("a", actor="ops", now_ms=1)
    assert await db.fleet_events.head() == head


async def test_a_recovery_names_its_agent_and_actor(db: Database) -> None:
    await db.fleet_events.record(recovery_action("a", RecoveryAction.FENCED, "watchdog",
                                                 "declared lost"))
    [event] = await db.fleet_events.read(0, 10)
    assert event.type == "recovery.action" and event.agent == "a"
    assert event.data == {"action": "fenced", "actor": "watchdog", "reason": "declared lost"}


@pytest.mark.parametrize("sql_url", ["sqlite"], indirect=True)
async def test_a_followers_read_waits_for_no_writer_and_a_write_still_takes_the_lock_first(
    db: Database, sql_url: str
) -> None:
    """On SQLite every other transaction begins IMMEDIATE; the followers' reads poll several
    times a second and must not queue behind another process's writer."""
    other = sqlite3.connect(make_url(sql_url).database or "", isolation_level=None, timeout=0.1)
    other.execute("BEGIN IMMEDIATE")  # another process is writing, and holds the lock
    try:
        async with asyncio.timeout(5):  # a read that waited would wait out the busy timeout
            assert await db.fleet_events.head() == 0
            assert await db.fleet_events.read(0, 10) == []
            assert await db.feed.read(0, 10) == []
    finally:
        other.execute("ROLLBACK")
        other.close()
    begun: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: begun.append(statement)
                 if statement.startswith("BEGIN") else None)
    await db.fleet_events.read(0, 10)  # the pooled connection, read-only for this use only
    await db.fleet_events.record(opened())
    assert begun == ["BEGIN", "BEGIN IMMEDIATE"]
