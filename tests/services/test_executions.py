"""submit, cancel, retry: admission in the store, cancel as one CAS gating every side effect."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from shepherd.core.clock import ManualClock
from shepherd.core.ids import AgentName
from shepherd.core.models import Agent, Trigger
from shepherd.core.status import ExecutionStatus as S
from shepherd.errors import AgentNotFound, AgentUnreachable, InvalidTransition
from shepherd.services.executions import cancel, retry, submit
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database
from tests.stores.redis.helpers import take_slot


@dataclass
class Runtime:
    fail: bool = False
    terminated: list[str] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)

    async def terminate(self, execution_id: str) -> object:
        if self.fail:
            raise AgentUnreachable("connection refused")
        self.terminated.append(execution_id)
        return None

    async def ack(self, execution_id: str) -> None:
        self.acked.append(execution_id)


@dataclass
class Directory:
    runtime: Runtime = field(default_factory=Runtime)

    def client_for(self, agent: Agent) -> Runtime | None:
        return self.runtime


async def running_on(db: Database, redis: RedisHandle, clock: ManualClock) -> str:
    row = await submit(db, agent="echo", input="x", trigger=Trigger.API, created_by="t")
    await take_slot(redis, row.agent, row.id, max_parallel=5, timeout_s=row.timeout_s,
                              now_ms=clock.now_ms(), holder="test")
    assert await db.executions.claim_queued(row.id, clock.now_ms(), "test")
    return row.id


@pytest.fixture
async def echo(db: Database) -> Agent:
    return await db.agents.create(name=AgentName("echo"), url="http://echo.test", command=None)


async def test_submit_queues_work_with_the_agents_timeout(db: Database, echo: Agent) -> None:
    row = await submit(db, agent="echo", input="hi", trigger=Trigger.API, created_by="me")
    assert (row.status, row.timeout_s, row.attempt, row.created_by) == (
        S.QUEUED, echo.execution_timeout_s, 1, "me",
    )


async def test_submit_to_an_unknown_agent_raises_not_found(db: Database) -> None:
    with pytest.raises(AgentNotFound):
        await submit(db, agent="ghost", input="", trigger=Trigger.API, created_by="me")


async def test_cancelling_running_work_releases_the_slot_and_terminates_the_child(
    db: Database, redis_handle: RedisHandle, clock: ManualClock, echo: Agent
) -> None:
    eid = await running_on(db, redis_handle, clock)
    directory = Directory()
    row = await cancel(db, redis_handle, directory, eid, "op", clock.now_ms())
    assert row.status is S.CANCELLED
    assert await redis_handle.slots.count("echo") == 0
    assert directory.runtime.terminated == directory.runtime.acked == [eid]


async def test_a_runtime_that_cannot_be_told_does_not_fail_the_cancel(
    db: Database, redis_handle: RedisHandle, clock: ManualClock, echo: Agent
) -> None:
    eid = await running_on(db, redis_handle, clock)
    directory = Directory(Runtime(fail=True))
    row = await cancel(db, redis_handle, directory, eid, "op", clock.now_ms())
    assert row.status is S.CANCELLED
    assert await redis_handle.slots.count("echo") == 0
    assert directory.runtime.acked == []  # never acked while the child may still run


async def test_cancelling_queued_work_touches_no_slot_and_no_runtime(
    db: Database, redis_handle: RedisHandle, clock: ManualClock, echo: Agent
) -> None:
    row = await submit(db, agent="echo", input="x", trigger=Trigger.API, created_by="t")
    directory = Directory()
    assert (await cancel(db, redis_handle, directory, row.id, "op", clock.now_ms())).status is (
        S.CANCELLED
    )
    assert directory.runtime.terminated == []


async def test_cancelling_twice_is_a_conflict_naming_the_status_with_no_second_effect(
    db: Database, redis_handle: RedisHandle, clock: ManualClock, echo: Agent
) -> None:
    eid = await running_on(db, redis_handle, clock)
    directory = Directory()
    await cancel(db, redis_handle, directory, eid, "op", clock.now_ms())
    with pytest.raises(InvalidTransition, match="is cancelled"):
        await cancel(db, redis_handle, directory, eid, "op", clock.now_ms())
    assert directory.runtime.terminated == directory.runtime.acked == [eid]
    events = [e.to_status for e in await db.executions.events(eid)]
    assert events.count(S.CANCELLED) == 1


async def test_retry_makes_a_new_attempt_only_of_failed_or_cancelled_work(
    db: Database, redis_handle: RedisHandle, clock: ManualClock, echo: Agent
) -> None:
    row = await submit(db, agent="echo", input="again", trigger=Trigger.API, created_by="t")
    with pytest.raises(InvalidTransition, match="is queued"):
        await retry(db, row.id, "op")
    await cancel(db, redis_handle, Directory(), row.id, "op", clock.now_ms())
    second = await retry(db, row.id, "op")
    assert (second.retry_of, second.attempt, second.input, second.agent) == (
        row.id, 2, "again", "echo",
    )
    assert second.status is S.QUEUED
