"""Executions looked up by id prefix, and the event log followed with a cursor, on SQLite and
PostgreSQL."""

from __future__ import annotations

from shepherd.core.clock import ManualClock
from shepherd.core.ids import AgentName
from shepherd.core.models import Execution, Trigger
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.stores.sql.database import Database


async def _submit(db: Database, agent: str = "a") -> Execution:
    return await db.executions.submit(agent=AgentName(agent), input="in", trigger=Trigger.API,
                                      created_by="t")


async def test_a_prefix_finds_matching_executions_oldest_first_within_an_agent(
    db: Database,
) -> None:
    for name in ("a", "b"):
        await db.agents.create(name=AgentName(name), url=None, command=None)
    one, two, other = await _submit(db), await _submit(db), await _submit(db, "b")
    found = await db.executions.find_by_prefix(one.id[:13], limit=5)
    assert [r.id for r in found] == sorted([one.id, two.id, other.id])
    assert [r.id for r in await db.executions.find_by_prefix(one.id)] == [one.id]
    scoped = await db.executions.find_by_prefix(one.id[:13], agent=AgentName("b"))
    assert [r.id for r in scoped] == [other.id]
    assert await db.executions.find_by_prefix("%") == []  # never a pattern


async def test_transitions_are_followed_after_a_cursor_with_their_run_outcome(
    db: Database, clock: ManualClock,
) -> None:
    await db.agents.create(name=AgentName("a"), url=None, command=None)
    start = await db.feed.head()
    row = await _submit(db)
    await db.executions.transition(row.id, ExecutionStatus.CANCELLED, Cause.CANCEL, actor="t",
                                   now_ms=clock.now_ms())
    seen = await db.feed.transitions_after(start)
    assert [(t.to_status, t.cause) for t in seen][-1] == (ExecutionStatus.CANCELLED, Cause.CANCEL)
    assert all(t.agent == "a" and t.execution_id == row.id for t in seen)
    assert await db.feed.head() == seen[-1].event_id
    assert await db.feed.transitions_after(seen[-1].event_id) == []
