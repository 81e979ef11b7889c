"""The outbox store: enqueued with the transition that won (never with one that lost), claimed by
one sender at a time, settled only by the claim holder, expired at its max age."""

from __future__ import annotations

import asyncio

from shepherd.core.clock import ManualClock
from shepherd.core.delivery import AttemptResult, RetryPolicy, decide_settlement
from shepherd.core.outbox import DeliveryStatus, OutboxMessage, SinkKind
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.stores.sql.database import Database
from shepherd.stores.sql.outbox import DestinationVerdict
from tests.stores.sql.test_transitions import new_row

S, D = ExecutionStatus, DeliveryStatus


def message(subject: str = "e1", key: str = "e1:1", max_age_s: int = 60,
            destination: str = "completion:a") -> OutboxMessage:
    return OutboxMessage(destination=destination, sink=SinkKind.COMPLETION, topic="completion",
                         subject=subject, idempotency_key=key, payload={"id": subject},
                         max_age_s=max_age_s)


async def test_a_winning_transition_enqueues_its_deliveries_in_the_same_transaction(
    db: Database,
) -> None:
    row = await new_row(db, S.FINALIZING)
    hook = message(row.id, f"{row.id}:1")
    assert await db.executions.transition(row.id, S.SUCCESS, Cause.FINALIZED, actor="t",
                                          now_ms=5, outbox=[hook])
    [stored] = await db.outbox.list()
    assert (stored.subject, stored.idempotency_key, stored.status, stored.payload) == (
        row.id, f"{row.id}:1", D.PENDING, {"id": row.id})
    assert (stored.created_at_ms, stored.next_attempt_at_ms, stored.expires_at_ms) == (
        5, 5, 60_005)


async def test_a_losing_transition_enqueues_nothing(db: Database) -> None:
    row = await new_row(db, S.FINALIZING)
    assert await db.executions.transition(row.id, S.SUCCESS, Cause.FINALIZED, actor="t", now_ms=5)
    assert not await db.executions.transition(row.id, S.FAILED, Cause.FINALIZED, actor="t",
                                              now_ms=6, outbox=[message(row.id)])
    assert await db.outbox.list() == []


async def test_two_racing_finalizers_enqueue_one_webhook(db: Database) -> None:
    row = await new_row(db, S.FINALIZING)

    async def finalize() -> bool:
        return await db.executions.transition(row.id, S.SUCCESS, Cause.FINALIZED, actor="t",
                                              now_ms=5, outbox=[message(row.id, f"{row.id}:1")])

    assert sorted(await asyncio.gather(finalize(), finalize(), finalize())) == [
        False, False, True]
    assert len(await db.outbox.list()) == 1


async def test_one_of_three_senders_claims_a_row(db: Database, clock: ManualClock) -> None:
    await db.outbox.enqueue([message()])
    [pending] = await db.outbox.unsettled(10)
    now = clock.now_ms()
    claims = await asyncio.gather(*(db.outbox.claim(pending.id, owner, now, now + 10_000)
                                    for owner in ("one", "two", "three")))
    won = [c for c in claims if c is not None]
    assert len(won) == 1 and won[0].attempts == 1 and won[0].status is D.SENDING


async def test_a_claim_is_taken_again_only_after_it_expired(db: Database, clock: ManualClock
                                                            ) -> None:
    await db.outbox.enqueue([message()])
    now = clock.now_ms()
    [pending] = await db.outbox.unsettled(10)
    assert await db.outbox.claim(pending.id, "dead-sender", now, now + 1_000)
    assert await db.outbox.claim(pending.id, "next", now + 1_000, now + 5_000) is None
    again = await db.outbox.claim(pending.id, "next", now + 1_001, now + 5_000)
    assert again is not None and (again.attempts, again.claimed_by) == (2, "next")


async def test_only_the_claim_holder_settles_and_the_destination_learns_with_it(
    db: Database, clock: ManualClock,
) -> None:
    await db.outbox.enqueue([message()])
    now = clock.now_ms()
    [pending] = await db.outbox.unsettled(10)
    claimed = await db.outbox.claim(pending.id, "me", now, now + 1_000)
    assert claimed is not None
    limited = decide_settlement(SinkKind.COMPLETION, AttemptResult(429, retry_after="9"), 1,
                                claimed.expires_at_ms, RetryPolicy(1, 60), now, 0.0)
    learned = DestinationVerdict("completion:a", limited.blocked_until_ms)
    assert not await db.outbox.settle(claimed.id, "someone-else", limited, 429, learned, now)
    assert await db.outbox.settle(claimed.id, "me", limited, 429, learned, now)
    [row] = await db.outbox.list()
    assert (row.status, row.last_status_code, row.last_error, row.claimed_by) == (
        D.PENDING, 429, "HTTP 429", None)
    states = await db.outbox.destination_states()
    assert states["completion:a"].blocked_until_ms == now + 9_000


async def test_rows_past_their_max_age_are_given_up_with_the_reason(
    db: Database, clock: ManualClock,
) -> None:
    await db.outbox.enqueue([message("old", "old:1", max_age_s=1),
                             message("young", "young:1", max_age_s=100)])
    clock.advance(2)
    assert len(await db.outbox.expire(clock.now_ms())) == 1
    rows = {r.subject: r for r in await db.outbox.list()}
    assert (rows["old"].status, rows["old"].last_error) == (D.DEAD, "expired")
    assert rows["young"].status is D.PENDING
    assert await db.outbox.counts() == {("completion", "dead"): 1, ("completion", "pending"): 1}


async def test_a_fatal_destination_is_remembered_and_revived(db: Database, clock: ManualClock
                                                            ) -> None:
    await db.outbox.enqueue([message()])
    [pending] = await db.outbox.unsettled(10)
    claimed = await db.outbox.claim(pending.id, "me", clock.now_ms(), clock.now_ms() + 1_000)
    assert claimed is not None
    gone = decide_settlement(SinkKind.COMPLETION, AttemptResult(410), 1, claimed.expires_at_ms,
                             RetryPolicy(1, 60), 0, 0.0)
    await db.outbox.settle(claimed.id, "me", gone, 410,
                           DestinationVerdict("completion:a", 0, "HTTP 410", "fp"), 0)
    state = (await db.outbox.destination_states())["completion:a"]
    assert (state.fatal_reason, state.fatal_fingerprint) == ("HTTP 410", "fp")
    await db.outbox.revive("completion:a", 1)
    assert (await db.outbox.destination_states())["completion:a"].fatal_reason is None


async def test_a_deep_backlog_of_one_destination_never_hides_another(db: Database) -> None:
    await db.outbox.enqueue([message(f"a{i}", f"a{i}:1") for i in range(5)])
    await db.outbox.enqueue([message("b", "b:1", destination="completion:b")])
    rows = await db.outbox.unsettled(per_destination=2)
    assert [(r.destination, r.id) for r in rows] == [
        ("completion:a", rows[0].id), ("completion:a", rows[0].id + 1),
        ("completion:b", rows[0].id + 5)]
