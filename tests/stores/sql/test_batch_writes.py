"""Status writes of many rows in one transaction keep every guarantee of the single CAS, row by
row: the dispatcher's claim of a pass, the monitor's settle-and-finalize chains of a page of
exits, the starts recorded for a batch."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, text

from shepherd.core.models import Leftover, TransitionFields
from shepherd.core.retry import RetryPlan
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.core.writes import StatusWrite, WriteChain
from shepherd.errors import StoreError
from shepherd.stores.sql.database import Database
from shepherd.stores.sql.starts import RuntimeStart
from tests.stores.sql.test_transitions import flip_by_hand, new_row

S = ExecutionStatus


async def test_a_claim_of_many_moves_the_queued_rows_and_loses_the_others(db: Database) -> None:
    queued = [await new_row(db) for _ in range(3)]
    running = await new_row(db, S.RUNNING)
    ids = [queued[0].id, running.id, queued[1].id, queued[2].id]
    assert await db.executions.claim_many(ids, now_ms=7, actor="d") == [True, False, True, True]
    assert await db.executions.claim_many(ids, now_ms=8, actor="d") == [False] * 4
    for row in queued:
        after = await db.executions.get(row.id)
        assert (after.status, after.dispatched_at_ms) == (S.RUNNING, 7)
        events = await db.executions.events(row.id)
        assert [(e.from_status, e.to_status, e.cause, e.actor, e.at_ms) for e in events[1:]] == [
            (S.QUEUED, S.RUNNING, Cause.DISPATCH, "d", 7)]
    assert len(await db.executions.events(running.id)) == 1  # the loser wrote nothing


async def test_a_claim_of_many_refuses_a_row_whose_log_already_ended(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    ended, fresh = await new_row(db), await new_row(db)
    assert await db.executions.transition(ended.id, S.CANCELLED, Cause.CANCEL, actor="t",
                                          now_ms=1)
    await flip_by_hand(db, ended.id, S.QUEUED)
    assert await db.executions.claim_many([ended.id, fresh.id], now_ms=2, actor="d") == [
        False, True]
    assert (await db.executions.get(ended.id)).status is S.QUEUED  # left for a person
    assert any("integrity error" in r.getMessage() and ended.id in r.getMessage()
               for r in caplog.records)


async def test_a_hinted_claim_and_a_hinted_page_of_one_are_written_without_reading_first(
    db: Database,
) -> None:
    """The rows' statuses are not read before the write when the writer read them: the claim
    (rows writing the same values) and a page of one exit (one row) on either backend."""
    reads: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().startswith("SELECT executions.id, executions.status"):
            reads.append(statement)

    queued = [await new_row(db) for _ in range(3)]
    running = await new_row(db, S.RUNNING)
    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        assert await db.executions.claim_many([r.id for r in queued], now_ms=7,
                                              actor="d") == [True] * 3
        assert await db.executions.write_chains([WriteChain(running.id, _finish(0), S.RUNNING)],
                                                actor="monitor", now_ms=8) == [True]
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert reads == []
    assert (await db.executions.get(running.id)).status is S.SUCCESS
    for row in queued:
        assert [e.to_status for e in await db.executions.events(row.id)][1:] == [S.RUNNING]


def _finish(exit_code: int) -> list[StatusWrite]:
    return [StatusWrite(S.FINALIZING, Cause.CHILD_EXITED,
                        fields=TransitionFields(finished_at_ms=3, exit_code=exit_code)),
            StatusWrite(S.SUCCESS if exit_code == 0 else S.FAILED, Cause.FINALIZED,
                        fields=TransitionFields(output_tail="out\x00tail", exit_code=exit_code))]


@pytest.mark.parametrize("seen", [None, S.RUNNING])
async def test_chains_settle_and_finalize_each_row_with_both_events_or_none(
    db: Database, seen: ExecutionStatus | None
) -> None:
    """With or without the status their writer read (PostgreSQL writes those in one statement)."""
    ok, bad = await new_row(db, S.RUNNING), await new_row(db, S.RUNNING)
    gone = await new_row(db, S.CANCELLED)  # cancelled meanwhile: its chain loses at once
    chains = [WriteChain(ok.id, _finish(0), seen), WriteChain(gone.id, _finish(0), seen),
              WriteChain(bad.id, _finish(2), seen)]
    assert await db.executions.write_chains(chains, actor="monitor", now_ms=4) == [
        True, False, True]
    assert await db.executions.write_chains(chains, actor="monitor", now_ms=5) == [False] * 3
    for row, end in ((ok, S.SUCCESS), (bad, S.FAILED)):
        after = await db.executions.get(row.id)
        assert (after.status, after.finished_at_ms, after.completed_at_ms) == (end, 3, 4)
        assert after.output_tail == "out\ufffdtail"  # stored under the text rule
        events = await db.executions.events(row.id)
        assert [(e.from_status, e.to_status) for e in events[1:]] == [
            (S.RUNNING, S.FINALIZING), (S.FINALIZING, end)]
    assert [e.to_status for e in await db.executions.events(gone.id)] == [S.QUEUED]


async def test_starts_are_recorded_only_on_rows_still_running(db: Database) -> None:
    running, cancelled = await new_row(db, S.RUNNING), await new_row(db, S.CANCELLED)
    recorded = await db.executions.record_starts([
        RuntimeStart(running.id, 41, 9, "boot-1"), RuntimeStart(cancelled.id, 42, 9, "boot-1")])
    assert recorded == [True, False]
    after = await db.executions.get(running.id)
    assert (after.pid, after.started_at_ms, after.runtime_boot_id) == (41, 9, "boot-1")
    assert (await db.executions.get(cancelled.id)).pid is None


async def test_rows_of_one_batch_writing_different_columns_each_keep_their_own(
    db: Database,
) -> None:
    quiet, loud, again = [await new_row(db, S.RUNNING) for _ in range(3)]
    settle = StatusWrite(S.FINALIZING, Cause.CHILD_EXITED,
                         fields=TransitionFields(finished_at_ms=3, exit_code=1))
    chains = [
        WriteChain(quiet.id, [settle, StatusWrite(S.SUCCESS, Cause.FINALIZED)]),
        WriteChain(loud.id, [settle, StatusWrite(
            S.FAILED, Cause.FINALIZED, reason="exit 1",
            fields=TransitionFields(error_class="exit_code", output_tail="boom"))]),
        WriteChain(again.id, [settle, StatusWrite(
            S.FAILED, Cause.FINALIZED, fields=TransitionFields(error_class="exit_code"),
            retry=RetryPlan(attempt=2, not_before_ms=99, reason="retry after exit 1"))]),
    ]
    assert await db.executions.write_chains(chains, actor="monitor", now_ms=4) == [True] * 3
    first, second, third = [await db.executions.get(r.id) for r in (quiet, loud, again)]
    assert (first.status, first.error_class, first.output_tail) == (S.SUCCESS, None, None)
    assert (second.status, second.error_class, second.output_tail) == (
        S.FAILED, "exit_code", "boom")
    assert [e.reason for e in await db.executions.events(loud.id)][-1] == "exit 1"
    assert (first.exit_code, second.exit_code, third.exit_code) == (1, 1, 1)
    [retry] = [r for r in await db.executions.list(limit=10) if r.retry_of == again.id]
    assert (retry.status, retry.attempt, retry.not_before_ms) == (S.QUEUED, 2, 99)


async def test_a_batch_whose_rows_change_under_the_lock_is_rolled_back_whole(
    db: Database,
) -> None:
    """SQLite counts a batch's rows: a row the UPDATE did not take (here a trigger stands in
    for a write that slipped past the lock) undoes every write of the transaction."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's driver does not count the rows of a batch")
    first, second = await new_row(db, S.RUNNING), await new_row(db, S.RUNNING)
    async with db.engine.begin() as conn:
        await conn.execute(text(
            "CREATE TRIGGER skip_second BEFORE UPDATE ON executions "
            f"WHEN old.id = '{second.id}' BEGIN SELECT RAISE(IGNORE); END"))
    chains = [WriteChain(r.id, _finish(0)) for r in (first, second)]
    with pytest.raises(StoreError, match="1 of 2 status writes changed under a held lock"):
        await db.executions.write_chains(chains, actor="monitor", now_ms=4)
    for row in (first, second):
        assert (await db.executions.get(row.id)).status is S.RUNNING
        assert len(await db.executions.events(row.id)) == 1


async def test_two_chains_of_one_execution_in_a_batch_are_refused_before_anything(
    db: Database,
) -> None:
    row = await new_row(db, S.RUNNING)
    chains = [WriteChain(row.id, _finish(0)), WriteChain(row.id, _finish(1))]
    with pytest.raises(ValueError, match="one chain per execution"):
        await db.executions.write_chains(chains, actor="monitor", now_ms=4)
    hinted = [WriteChain(row.id, _finish(0), S.RUNNING), WriteChain(row.id, _finish(1), S.RUNNING)]
    with pytest.raises(ValueError, match="one chain per execution"):
        await db.executions.write_chains(hinted, actor="monitor", now_ms=4)
    assert (await db.executions.get(row.id)).status is S.RUNNING
    assert len(await db.executions.events(row.id)) == 1


async def test_the_status_a_writer_read_is_a_hint_never_trusted(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A row that moved since its writer read it is written from the status it has (here an
    operator's cancel, allowed from running too) or not at all; one whose log ended is refused
    and reported, as without the hint."""
    moved, ended, fresh = await new_row(db, S.RUNNING), await new_row(db), await new_row(db)
    assert await db.executions.transition(ended.id, S.CANCELLED, Cause.CANCEL, actor="t",
                                          now_ms=1)
    await flip_by_hand(db, ended.id, S.QUEUED)
    cancel = [StatusWrite(S.CANCELLED, Cause.CANCEL, reason="asked")]
    chains = [WriteChain(moved.id, cancel, S.QUEUED), WriteChain(ended.id, cancel, S.QUEUED),
              WriteChain(fresh.id, cancel, S.QUEUED)]
    assert await db.executions.write_chains(chains, actor="op", now_ms=2) == [True, False, True]
    for row, frm in ((moved, S.RUNNING), (fresh, S.QUEUED)):
        assert (await db.executions.get(row.id)).status is S.CANCELLED
        events = await db.executions.events(row.id)
        assert [(e.from_status, e.to_status, e.reason) for e in events[1:]] == [
            (frm, S.CANCELLED, "asked")]
    assert (await db.executions.get(ended.id)).status is S.QUEUED
    assert len(await db.executions.events(ended.id)) == 2
    assert any("integrity error" in r.getMessage() and ended.id in r.getMessage()
               for r in caplog.records)


async def test_a_hinted_chain_stores_every_kind_of_column_it_writes(db: Database) -> None:
    """Texts under the text rule, integers, flags and the leftovers' JSON, as the
    transaction path stores them."""
    row, plain = await new_row(db, S.RUNNING), await new_row(db, S.RUNNING)
    end = StatusWrite(S.SUCCESS, Cause.FINALIZED, fields=TransitionFields(
        exit_code=0, error="e\x00rr", input_unread=True,
        leftovers=(Leftover(77, "sleep"), Leftover(78, "tail"))))
    chains = [WriteChain(row.id, [_finish(0)[0], end], S.RUNNING),
              WriteChain(plain.id, _finish(0), S.RUNNING)]
    assert await db.executions.write_chains(chains, actor="monitor", now_ms=4) == [True, True]
    after = await db.executions.get(row.id)
    assert (after.status, after.exit_code, after.error, after.input_unread) == (
        S.SUCCESS, 0, "e\ufffdrr", True)
    assert after.leftovers == (Leftover(77, "sleep"), Leftover(78, "tail"))
    assert (await db.executions.get(plain.id)).leftovers == ()


async def test_concurrent_batches_over_the_same_rows_each_win_a_row_once(db: Database) -> None:
    """Two claims over the same rows, in opposite orders, at once: no deadlock, and every row
    is claimed by exactly one of them with exactly one event."""
    rows = [await new_row(db) for _ in range(20)]
    ids = [r.id for r in rows]
    first, second = await asyncio.gather(
        db.executions.claim_many(ids, now_ms=7, actor="one"),
        db.executions.claim_many(ids[::-1], now_ms=7, actor="two"))
    assert [a or b for a, b in zip(first, second[::-1], strict=True)] == [True] * 20
    assert not any(a and b for a, b in zip(first, second[::-1], strict=True))
    for row in rows:
        assert [e.to_status for e in await db.executions.events(row.id)] == [S.QUEUED, S.RUNNING]
