"""Retries as new attempt rows, the retry policy resolved at creation, and the backoff the
dispatcher honours, on SQLite and PostgreSQL."""

from __future__ import annotations

from shepherd.core.clock import ManualClock
from shepherd.core.ids import AgentName
from shepherd.core.models import Execution, TransitionFields, Trigger
from shepherd.core.retry import RetryPlan
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.services import executions as service
from shepherd.stores.sql.database import Database

S = ExecutionStatus
A = AgentName("a")


async def retry_of(db: Database, execution_id: str) -> Execution:
    [again] = [r for r in await db.executions.list() if r.retry_of == execution_id]
    return again


async def running_row(db: Database, clock: ManualClock, **agent: object) -> Execution:
    await db.agents.create(name=A, url=None, command=("true",), **agent)
    row = await db.executions.submit(agent=A, input="in", trigger=Trigger.API, created_by="t")
    assert await db.executions.claim_queued(row.id, clock.now_ms(), "d")
    return await db.executions.get(row.id)


async def test_a_failure_with_a_retry_plan_queues_the_next_attempt_in_the_same_transaction(
    db: Database, clock: ManualClock
) -> None:
    row = await running_row(db, clock, max_attempts=3, retry_on_failure=True)
    plan = RetryPlan(attempt=2, not_before_ms=clock.now_ms() + 4_000, reason="attempt 2 of 3")
    assert await db.executions.transition(
        row.id, S.FAILED, Cause.ORPHANED, actor="watchdog", now_ms=clock.now_ms(),
        reason="no record", fields=TransitionFields(error_class="orphaned"), retry=plan,
    )
    again = await retry_of(db, row.id)
    assert (await db.executions.get(row.id)).status is S.FAILED
    assert (again.attempt, again.retry_of, again.trigger, again.created_by) == (
        2, row.id, Trigger.RETRY, "watchdog")
    assert (again.max_attempts, again.retry_on_failure) == (3, True)
    assert (again.input, again.timeout_s, again.agent) == (row.input, row.timeout_s, row.agent)
    assert again.not_before_ms == clock.now_ms() + 4_000
    [first] = await db.executions.events(again.id)
    assert (first.from_status, first.to_status, first.cause, first.actor, first.reason) == (
        None, S.QUEUED, Cause.RETRY, "watchdog", "attempt 2 of 3")


async def test_a_lost_cas_queues_no_retry(db: Database, clock: ManualClock) -> None:
    row = await running_row(db, clock, max_attempts=3)
    assert await db.executions.transition(row.id, S.CANCELLED, Cause.CANCEL, actor="op",
                                          now_ms=1)
    plan = RetryPlan(2, 0, "r")
    assert not await db.executions.transition(row.id, S.FAILED, Cause.ORPHANED, actor="w",
                                              now_ms=2, retry=plan)
    assert len(await db.executions.list()) == 1


async def test_the_dispatcher_does_not_see_a_retry_before_its_backoff(
    db: Database, clock: ManualClock
) -> None:
    row = await running_row(db, clock, max_attempts=2)
    now = clock.now_ms()
    await db.executions.transition(row.id, S.FAILED, Cause.AGENT_LOST, actor="w", now_ms=now,
                                   retry=RetryPlan(2, now + 2_000, "r"))
    assert await db.executions.peek_queued("a", 10, now_ms=now + 1_999) == []
    [due] = await db.executions.peek_queued("a", 10, now_ms=now + 2_000)
    assert due.retry_of == row.id
    assert [r.id for r in await db.executions.peek_queued("a", 10)] == [due.id]


async def test_the_policy_is_the_schedules_else_the_agents(db: Database) -> None:
    await db.agents.create(name=A, url=None, command=("true",), max_attempts=2,
                           retry_on_failure=True)
    own = await db.schedules.create(agent=A, cron="* * * * *", max_attempts=5,
                                    retry_on_failure=False)
    inherits = await db.schedules.create(agent=A, cron="* * * * *")
    assert (inherits.max_attempts, inherits.retry_on_failure) == (None, None)
    made = {
        name: await db.executions.submit(agent=A, input="", trigger=Trigger.SCHEDULE,
                                         created_by="s", schedule_id=sid)
        for name, sid in (("own", own.id), ("inherits", inherits.id), ("api", None))
    }
    assert (made["own"].max_attempts, made["own"].retry_on_failure) == (5, False)
    assert (made["inherits"].max_attempts, made["inherits"].retry_on_failure) == (2, True)
    assert (made["api"].max_attempts, made["api"].retry_on_failure) == (2, True)


async def test_agents_default_to_one_attempt_without_retry_on_failure(db: Database) -> None:
    agent = await db.agents.create(name=A, url=None, command=("true",))
    assert (agent.max_attempts, agent.retry_on_failure) == (1, False)
    row = await db.executions.submit(agent=A, input="", trigger=Trigger.API, created_by="t")
    assert (row.max_attempts, row.retry_on_failure, row.not_before_ms) == (1, False, None)


async def test_an_operators_retry_is_the_same_kind_of_row_without_a_backoff(
    db: Database, clock: ManualClock
) -> None:
    row = await running_row(db, clock, max_attempts=4)
    await db.executions.transition(row.id, S.FAILED, Cause.ORPHANED, actor="w", now_ms=1)
    again = await service.retry(db, row.id, "alice")
    assert (again.attempt, again.retry_of, again.max_attempts, again.not_before_ms) == (
        2, row.id, 4, None)
    [first] = await db.executions.events(again.id)
    assert (first.cause, first.actor, first.reason) == (
        Cause.RETRY, "alice", f"retry of {row.id} asked by alice")


async def test_a_retry_still_queues_when_its_schedule_was_deleted_since(
    db: Database, clock: ManualClock
) -> None:
    await db.agents.create(name=A, url=None, command=("true",), max_attempts=2)
    schedule = await db.schedules.create(agent=A, cron="* * * * *")
    row = await db.executions.submit(agent=A, input="", trigger=Trigger.SCHEDULE,
                                     created_by="s", schedule_id=schedule.id)
    await db.executions.claim_queued(row.id, 1, "d")
    await db.schedules.delete(schedule.id)
    assert await db.executions.transition(row.id, S.FAILED, Cause.ORPHANED, actor="w",
                                          now_ms=2, retry=RetryPlan(2, 2, "r"))
    again = await retry_of(db, row.id)
    assert (again.status, again.schedule_id) == (S.QUEUED, schedule.id)


async def test_a_note_records_an_event_without_changing_the_status(
    db: Database, clock: ManualClock
) -> None:
    row = await running_row(db, clock)
    await db.executions.transition(row.id, S.FAILED, Cause.ORPHANED, actor="w", now_ms=1)
    assert await db.executions.note(row.id, Cause.STRAY_TERMINATED, actor="watchdog",
                                    now_ms=2, reason="still running; terminated")
    assert not await db.executions.note("0000000000000ffffffffff", Cause.STRAY_TERMINATED,
                                        actor="watchdog", now_ms=2, reason="x")
    last = (await db.executions.events(row.id))[-1]
    assert (last.from_status, last.to_status, last.cause, last.actor) == (
        S.FAILED, S.FAILED, Cause.STRAY_TERMINATED, "watchdog")
    assert (await db.executions.get(row.id)).status is S.FAILED


async def test_statuses_reads_many_rows_at_once_and_leaves_out_the_unknown(
    db: Database, clock: ManualClock
) -> None:
    row = await running_row(db, clock)
    assert await db.executions.statuses([row.id, "nope"]) == {row.id: S.RUNNING}
    assert await db.executions.statuses([]) == {}
