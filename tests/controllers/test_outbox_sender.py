"""The outbox sender against a real local HTTP receiver that answers 200, 429, 500, 404, 410 or
hangs, on demand; real SQL, the clock moved by hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from shepherd.controllers.delivery import ConfiguredDestinations
from shepherd.controllers.outbox import OutboxConfig, OutboxSender
from shepherd.core.clock import ManualClock
from shepherd.core.ids import AgentName
from shepherd.core.outbox import DeliveryStatus, OutboxMessage, SinkKind
from shepherd.stores.sql.database import Database
from tests.fixtures.receiver import Answer, Receiver, receiving

D = DeliveryStatus


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def hook(subject: str, destination: str = "completion:a", max_age_s: int = 3600,
         sink: SinkKind = SinkKind.COMPLETION) -> OutboxMessage:
    return OutboxMessage(destination=destination, sink=sink, topic="completion",
                         subject=subject, idempotency_key=f"{subject}:1",
                         payload={"execution_id": subject}, max_age_s=max_age_s)


@pytest.fixture
async def sender(db: Database, clock: ManualClock, receiver: Receiver
                 ) -> AsyncIterator[OutboxSender]:
    await db.agents.create(name=AgentName("a"), url=None, command=("true",),
                           completion_webhook_url=receiver.url + "/a")
    built = OutboxSender(db, clock, ConfiguredDestinations(db, {}), owner="sender-1",
                         config=OutboxConfig(send_timeout_s=5.0), draw=lambda: 0.0)
    yield built
    await built.stop()


async def send(sender: OutboxSender) -> None:
    await sender.run_once()
    await sender.drain()


async def statuses(db: Database) -> dict[str, DeliveryStatus]:
    return {r.subject: r.status for r in await db.outbox.list()}


async def test_a_200_delivers_once_with_the_idempotency_key(
    db: Database, sender: OutboxSender, receiver: Receiver
) -> None:
    await db.outbox.enqueue([hook("e1")])
    await send(sender)
    await send(sender)
    assert receiver.keys() == ["e1:1"]
    assert receiver.requests[0].body == {"execution_id": "e1"}
    assert await statuses(db) == {"e1": D.DELIVERED}


async def test_a_500_is_retried_after_its_backoff_with_the_same_key(
    db: Database, sender: OutboxSender, receiver: Receiver, clock: ManualClock
) -> None:
    receiver.answer(Answer(500), Answer(500))
    await db.outbox.enqueue([hook("e1")])
    await send(sender)
    await send(sender)  # still within the first backoff: nothing sent
    assert receiver.keys() == ["e1:1"]
    for _ in range(2):
        clock.advance(60)
        await send(sender)
    assert receiver.keys() == ["e1:1"] * 3
    [row] = await db.outbox.list()
    assert (row.status, row.attempts, row.last_status_code) == (D.DELIVERED, 3, 200)


async def test_a_429_holds_the_destination_until_its_retry_after(
    db: Database, sender: OutboxSender, receiver: Receiver, clock: ManualClock
) -> None:
    receiver.answer(Answer(429, headers={"Retry-After": "30"}))
    await db.outbox.enqueue([hook("e1")])
    await send(sender)
    await db.outbox.enqueue([hook("e2")])
    clock.advance(29)
    await send(sender)
    assert receiver.keys() == ["e1:1"]  # e2 waits too: the limit is the destination's
    clock.advance(2)
    await send(sender)
    assert sorted(receiver.keys()) == ["e1:1", "e1:1", "e2:1"]
    assert set((await statuses(db)).values()) == {D.DELIVERED}


@pytest.mark.parametrize("status", [404, 410])
async def test_a_gone_destination_stops_and_resumes_when_its_url_changes(
    db: Database, sender: OutboxSender, receiver: Receiver, clock: ManualClock, status: int
) -> None:
    receiver.default = Answer(status, body="")
    await db.outbox.enqueue([hook("e1"), hook("e2")])
    await send(sender)
    await db.outbox.enqueue([hook("e3")])
    clock.advance(600)
    await send(sender)
    assert len(receiver.requests) == 2  # both in flight at once; nothing after the answers
    [state] = await db.outbox.destinations()
    assert state["fatal_reason"] == f"HTTP {status}"
    assert set((await statuses(db)).values()) == {D.PENDING}  # visible, waiting
    receiver.default = Answer(200)
    await db.agents.update(AgentName("a"), completion_webhook_url=receiver.url + "/fixed")
    await send(sender)
    assert [r.path for r in receiver.requests] == ["/a", "/a", "/fixed", "/fixed", "/fixed"]
    assert set((await statuses(db)).values()) == {D.DELIVERED}


async def test_a_destination_removed_from_its_agent_gives_its_rows_up(
    db: Database, sender: OutboxSender, receiver: Receiver
) -> None:
    await db.agents.update(AgentName("a"), completion_webhook_url=None)
    await db.outbox.enqueue([hook("e1")])
    await send(sender)
    [row] = await db.outbox.list()
    assert (row.status, row.last_error) == (D.DEAD, "no destination: not configured any more")
    assert receiver.requests == []


async def test_a_row_failing_past_its_max_age_is_given_up_and_visible(
    db: Database, sender: OutboxSender, receiver: Receiver, clock: ManualClock
) -> None:
    receiver.default = Answer(500)
    await db.outbox.enqueue([hook("e1", max_age_s=10)])
    for _ in range(5):
        await send(sender)
        clock.advance(3)
    [row] = await db.outbox.list(statuses=[D.DEAD])
    assert row.last_error is not None and "HTTP 500" in row.last_error
    assert row.last_error.startswith(("expired", "expired after"))


async def test_a_hanging_receiver_holds_only_its_own_destination(
    db: Database, sender: OutboxSender, receiver: Receiver, clock: ManualClock
) -> None:
    await db.agents.create(name=AgentName("b"), url=None, command=("true",),
                           completion_webhook_url=receiver.url + "/b")
    receiver.answer(*[Answer(hang=True)] * 4)
    await db.outbox.enqueue([hook(f"a{i}") for i in range(6)])
    report = await sender.run_once()
    assert len(report.started) == 4  # the destination's concurrency
    await wait_for(lambda: receiver.hanging() == 4)
    await db.outbox.enqueue([hook("b1", "completion:b")])
    await sender.run_once()
    await wait_for(lambda: "b1:1" in receiver.keys(answered=200))
    assert receiver.hanging() == 4  # b was delivered while a's receiver still hangs
    receiver.release()
    await sender.drain()


async def test_a_sender_killed_mid_send_leaves_a_claim_that_another_sends_with_the_same_key(
    db: Database, sender: OutboxSender, receiver: Receiver, clock: ManualClock
) -> None:
    receiver.answer(Answer(hang=True))
    await db.outbox.enqueue([hook("e1")])
    await sender.run_once()
    await wait_for(lambda: receiver.hanging() == 1)
    await sender.stop()  # dies mid-send: the row stays claimed
    other = OutboxSender(db, clock, ConfiguredDestinations(db, {}), owner="sender-2",
                         config=OutboxConfig(send_timeout_s=5.0), draw=lambda: 0.0)
    try:
        assert (await other.run_once()).started == []  # the claim is still live
        clock.advance(11)  # past send timeout + claim margin
        await send(other)
    finally:
        await other.stop()
    assert receiver.keys() == ["e1:1", "e1:1"]
    assert await statuses(db) == {"e1": D.DELIVERED}


async def wait_for(probe, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout_s / 0.02)):
        if probe():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")
