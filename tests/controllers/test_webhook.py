"""Completion webhooks through the outbox: the terminal transition enqueues, the sender delivers
to a local receiver (outside the unit; the execution path and the stores are real)."""

from __future__ import annotations

import pytest

from shepherd.core.ids import AgentName
from shepherd.core.models import Trigger
from shepherd.core.outbox import DeliveryStatus
from shepherd.core.status import ExecutionStatus as S
from tests.controllers.conftest import Controllers
from tests.fixtures.receiver import Answer, receiving
from tests.fixtures.runtimes import StartRuntime


async def run_one(c: Controllers, start_runtime: StartRuntime, hook: str) -> str:
    runtime = await start_runtime("hooked", ["sh", "-c", "cat >/dev/null; echo ok"])
    await c.db.agents.create(name=AgentName("hooked"), url=runtime.url, command=None,
                             completion_webhook_url=hook)
    row = await c.db.executions.submit(agent=AgentName("hooked"), input="", trigger=Trigger.API,
                                       created_by="t")
    await c.dispatcher.run_once()
    agent = await c.db.agents.get("hooked")
    client = c.directory.client_for(agent)
    assert client is not None
    await client.get(row.id, wait_s=10)
    await c.monitor.sync_agent(agent, client)
    await c.finalizer.run_once()
    return row.id


async def deliver(c: Controllers) -> None:
    await c.outbox.run_once()
    await c.outbox.drain()


@pytest.mark.parametrize("sql_url", ["sqlite"], indirect=True)
async def test_a_finished_execution_posts_its_summary_once_with_an_idempotency_key(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    with receiving() as receiver:
        eid = await run_one(controllers, start_runtime, receiver.url + "/hook")
        assert receiver.requests == []  # the finalizer enqueued; it did not send
        await deliver(controllers)
        await controllers.finalizer.run_once()  # nothing left to finalize: nothing new queued
        await deliver(controllers)
    [seen] = receiver.requests
    assert seen.headers["idempotency-key"] == f"{eid}:1"
    assert (seen.body["execution_id"], seen.body["status"], seen.body["exit_code"]) == (
        eid, "success", 0)
    [row] = await controllers.db.outbox.list(topic="completion")
    assert (row.status, row.subject, row.attempts) == (DeliveryStatus.DELIVERED, eid, 1)


@pytest.mark.parametrize("sql_url", ["sqlite"], indirect=True)
async def test_a_failing_receiver_is_retried_with_the_same_key_and_never_blocks_the_result(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    with receiving() as receiver:
        receiver.answer(Answer(503), Answer(500))
        eid = await run_one(c, start_runtime, receiver.url + "/hook")
        assert (await c.db.executions.get(eid)).status is S.SUCCESS
        for _ in range(3):
            await deliver(c)
            c.clock.advance(5)  # past the backoff of the failed attempt
    assert receiver.keys() == [f"{eid}:1"] * 3
    [row] = await c.db.outbox.list(topic="completion")
    assert (row.status, row.attempts) == (DeliveryStatus.DELIVERED, 3)
