"""The status CAS through the repository: winners write one event, losers write nothing."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from prometheus_client import generate_latest

from shepherd.core.ids import AgentName
from shepherd.core.models import Execution, Leftover, TransitionFields, Trigger
from shepherd.core.status import TRANSITIONS, Cause, ExecutionStatus
from shepherd.stores.sql.database import Database, open_database
from shepherd.stores.sql.starts import RuntimeStart
from shepherd.stores.sql.tables import execution_events, executions
from shepherd.telemetry import Telemetry

S = ExecutionStatus


async def new_row(db: Database, status: ExecutionStatus = S.QUEUED) -> Execution:
    if not await db.agents.list():
        await db.agents.create(name=AgentName("a"), url=None, command=("true",),
                               max_backlog_depth=10_000)
    row = await db.executions.submit(agent=AgentName("a"), input="x", trigger=Trigger.API,
                                     created_by="test")
    if status is not S.QUEUED:
        async with db.engine.begin() as conn:
            await conn.execute(executions.update().where(executions.c.id == row.id)
                               .values(status=status.value))
    return row


@pytest.mark.parametrize(("frm", "to"), sorted(TRANSITIONS, key=str))
async def test_every_allowed_transition_wins_once_with_its_event(
    db: Database, frm: ExecutionStatus, to: ExecutionStatus
) -> None:
    cause = sorted(TRANSITIONS[(frm, to)])[0]
    row = await new_row(db, frm)
    assert await db.executions.transition(row.id, to, cause, actor="t", now_ms=5, reason="why")
    after = await db.executions.get(row.id)
    assert after.status is to
    assert (after.completed_at_ms == 5) == to.is_terminal
    last = (await db.executions.events(row.id))[-1]
    assert (last.from_status, last.to_status, last.cause, last.actor, last.reason) == (
        frm, to, cause, "t", "why"
    )
    # the same CAS again loses: the row is no longer in the from-status
    assert not await db.executions.transition(row.id, to, cause, actor="t", now_ms=6)
    assert len(await db.executions.events(row.id)) == 2


FORBIDDEN = [
    (frm, to, cause)
    for frm, to, cause in itertools.product(
        [S.SUCCESS, S.FAILED, S.CANCELLED, S.SKIPPED, S.QUEUED], ExecutionStatus, [Cause.CANCEL,
                                                                                  Cause.RETRY]
    )
    if cause not in TRANSITIONS.get((frm, to), frozenset())
]


@pytest.mark.parametrize(("frm", "to", "cause"), FORBIDDEN[:40])
async def test_a_forbidden_transition_changes_nothing_and_writes_no_event(
    db: Database, frm: ExecutionStatus, to: ExecutionStatus, cause: Cause
) -> None:
    row = await new_row(db, frm)
    before = await db.executions.get(row.id)
    assert not await db.executions.transition(row.id, to, cause, actor="t", now_ms=9)
    assert await db.executions.get(row.id) == before
    assert len(await db.executions.events(row.id)) == 1


async def test_terminal_is_write_once_and_cancelled_is_sticky(db: Database) -> None:
    row = await new_row(db)
    assert await db.executions.transition(row.id, S.CANCELLED, Cause.CANCEL, actor="op",
                                          now_ms=1)
    for to, cause in [(S.RUNNING, Cause.DISPATCH), (S.FAILED, Cause.BACKSTOP),
                      (S.QUEUED, Cause.RETRY), (S.SUCCESS, Cause.FINALIZED)]:
        assert not await db.executions.transition(row.id, to, cause, actor="x", now_ms=2)
    assert (await db.executions.get(row.id)).status is S.CANCELLED


async def test_of_two_concurrent_writers_exactly_one_wins_and_the_loser_writes_nothing(
    db: Database,
) -> None:
    row = await new_row(db, S.RUNNING)
    results = await asyncio.gather(
        db.executions.transition(row.id, S.CANCELLED, Cause.CANCEL, actor="op", now_ms=1),
        db.executions.transition(row.id, S.FINALIZING, Cause.CHILD_EXITED, actor="mon",
                                 now_ms=1, fields=TransitionFields(exit_code=0)),
    )
    assert sorted(results) == [False, True]
    events = await db.executions.events(row.id)
    assert len(events) == 2
    assert (await db.executions.get(row.id)).status is events[-1].to_status


async def test_twenty_concurrent_claimers_of_one_queued_row_yield_one_winner(
    db: Database,
) -> None:
    row = await new_row(db)
    results = await asyncio.gather(
        *(db.executions.claim_queued(row.id, now_ms=3, actor=f"d{i}") for i in range(20))
    )
    assert results.count(True) == 1
    claimed = await db.executions.get(row.id)
    assert (claimed.status, claimed.dispatched_at_ms) == (S.RUNNING, 3)
    assert [e.to_status for e in await db.executions.events(row.id)] == [S.QUEUED, S.RUNNING]


async def test_a_refused_dispatch_forgets_where_it_ran(db: Database) -> None:
    row = await new_row(db)
    assert await db.executions.claim_queued(row.id, now_ms=3, actor="d")
    assert await db.executions.record_start(row.id, pid=42, started_at_ms=4, boot_id="b")
    assert await db.executions.transition(
        row.id, S.QUEUED, Cause.DISPATCH_REFUSED, actor="d", now_ms=5,
        fields=TransitionFields(reset_dispatch=True),
    )
    back = await db.executions.get(row.id)
    assert (back.status, back.pid, back.started_at_ms, back.dispatched_at_ms,
            back.runtime_boot_id) == (S.QUEUED, None, None, None, None)
    assert back.queued_at_ms == row.queued_at_ms


async def test_record_start_only_touches_running_rows(db: Database) -> None:
    row = await new_row(db)
    assert not await db.executions.record_start(row.id, pid=1, started_at_ms=1, boot_id="b")
    assert (await db.executions.get(row.id)).pid is None


async def test_a_batch_of_starts_records_only_the_rows_still_running(db: Database) -> None:
    rows = [await new_row(db) for _ in range(3)]
    for row in rows[:2]:
        assert await db.executions.claim_queued(row.id, now_ms=3, actor="d")
    recorded = await db.executions.record_starts(
        [RuntimeStart(row.id, pid=10 + i, started_at_ms=4, boot_id="b")
         for i, row in enumerate(rows)])
    assert recorded == [True, True, False]
    assert [(await db.executions.get(r.id)).pid for r in rows] == [10, 11, None]
    assert await db.executions.record_starts(
        [RuntimeStart(r.id, pid=20, started_at_ms=5, boot_id="b") for r in rows[:2]]
    ) == [True, True]


async def test_a_result_stores_the_unread_input_and_the_leftovers_and_reads_them_back(
    db: Database,
) -> None:
    row = await new_row(db, S.FINALIZING)
    assert (row.input_unread, row.leftovers) == (None, ())
    leftovers = (Leftover(41, "sleep"), Leftover(42, "node"))
    assert await db.executions.transition(
        row.id, S.SUCCESS, Cause.FINALIZED, actor="t", now_ms=5,
        fields=TransitionFields(exit_code=0, input_unread=True, leftovers=leftovers),
    )
    after = await db.executions.get(row.id)
    assert (after.input_unread, after.leftovers) == (True, leftovers)


async def test_a_result_without_leftovers_stores_none_and_reads_back_empty(db: Database) -> None:
    row = await new_row(db, S.FINALIZING)
    assert await db.executions.transition(
        row.id, S.FAILED, Cause.FINALIZED, actor="t", now_ms=5,
        fields=TransitionFields(exit_code=1, input_unread=False, leftovers=()),
    )
    async with db.engine.connect() as conn:
        stored = (await conn.execute(executions.select().where(executions.c.id == row.id))
                  ).mappings().one()
    assert (stored["input_unread"], stored["leftovers"]) == (False, None)
    assert (await db.executions.get(row.id)).leftovers == ()


async def flip_by_hand(db: Database, execution_id: str, status: ExecutionStatus) -> None:
    """What an operator's stray UPDATE does: change the column, write no event."""
    async with db.engine.begin() as conn:
        await conn.execute(executions.update().where(executions.c.id == execution_id)
                           .values(status=status.value, completed_at_ms=None))


@pytest.mark.parametrize("ended", [S.SUCCESS, S.CANCELLED])
async def test_a_terminal_row_flipped_back_to_running_by_hand_is_never_moved_again(
    db: Database, ended: ExecutionStatus, caplog: pytest.LogCaptureFixture
) -> None:
    row = await new_row(db, S.FINALIZING if ended is S.SUCCESS else S.QUEUED)
    cause = Cause.FINALIZED if ended is S.SUCCESS else Cause.CANCEL
    assert await db.executions.transition(row.id, ended, cause, actor="t", now_ms=1)
    await flip_by_hand(db, row.id, S.RUNNING)
    for to, why in [(S.CANCELLED, Cause.CANCEL), (S.FINALIZING, Cause.CHILD_EXITED),
                    (S.FAILED, Cause.TIMED_OUT), (S.QUEUED, Cause.DISPATCH_REFUSED)]:
        assert not await db.executions.transition(row.id, to, why, actor="x", now_ms=2)
    terminal = [e for e in await db.executions.events(row.id) if e.to_status.is_terminal]
    assert [e.to_status for e in terminal] == [ended]
    assert (await db.executions.get(row.id)).status is S.RUNNING  # left for a person to look at
    refusals = [r for r in caplog.records if "integrity error" in r.getMessage()]
    assert len(refusals) == 4 and all(row.id in r.getMessage() for r in refusals)
    assert all(r.levelname == "ERROR" for r in refusals)


async def test_integrity_refusals_are_counted(db: Database) -> None:
    telemetry = Telemetry()
    counted = await open_database(db.engine.url.render_as_string(hide_password=False), db.clock,
                                  telemetry=telemetry)
    try:
        row = await new_row(counted)
        assert await counted.executions.transition(row.id, S.CANCELLED, Cause.CANCEL,
                                                   actor="t", now_ms=1)
        await flip_by_hand(counted, row.id, S.QUEUED)
        assert not await counted.executions.claim_queued(row.id, now_ms=2, actor="d")
        assert not await counted.executions.claim_queued(row.id, now_ms=3, actor="d")
    finally:
        await counted.close()
    assert b"shepherd_integrity_refusals_total 2.0" in generate_latest(telemetry.registry)


async def test_a_skipped_row_is_terminal_from_birth_and_never_moves(db: Database) -> None:
    row = await new_row(db)
    async with db.engine.begin() as conn:  # as admission writes it: born skipped, one event
        await conn.execute(executions.update().where(executions.c.id == row.id)
                           .values(status=S.SKIPPED.value))
        await conn.execute(execution_events.update()
                           .where(execution_events.c.execution_id == row.id)
                           .values(to_status=S.SKIPPED.value))
    await flip_by_hand(db, row.id, S.QUEUED)
    assert not await db.executions.claim_queued(row.id, now_ms=2, actor="d")
