"""The outbox's pure decisions: which rows to send, what an answer means, what happens next."""

from __future__ import annotations

import pytest

from shepherd.core.delivery import (
    MAX_RETRY_AFTER_MS,
    AttemptResult,
    RetryPolicy,
    Verdict,
    body_hint,
    classify_attempt,
    decide_settlement,
    parse_retry_after,
)
from shepherd.core.outbox import (
    DeliveryStatus,
    DestinationPolicy,
    DestinationState,
    PendingRow,
    SenderView,
    SinkKind,
    decide_sends,
    url_fingerprint,
)

NOW = 1_700_000_000_000
P, SENDING = DeliveryStatus.PENDING, DeliveryStatus.SENDING
POLICIES = {
    SinkKind.COMPLETION: DestinationPolicy(2, 0, ordered=False),
    SinkKind.SLACK: DestinationPolicy(1, 1000, ordered=True),
    SinkKind.ALERTMANAGER: DestinationPolicy(1, 1000, ordered=True),
    SinkKind.WEBHOOK: DestinationPolicy(1, 1000, ordered=True),
}
FP = {"completion:a": "fa", "completion:b": "fb", "alert:slack": "fs"}


def row(i: int, dest: str = "completion:a", *, status: DeliveryStatus = P, next_at: int = NOW,
        claimed_until: int | None = None) -> PendingRow:
    sink = SinkKind.SLACK if dest == "alert:slack" else SinkKind.COMPLETION
    return PendingRow(i, dest, sink, status, next_at, claimed_until)


def plan(rows: list[PendingRow], states: dict[str, DestinationState] | None = None,
         view: SenderView | None = None, fps: dict[str, str | None] | None = None):  # type: ignore[no-untyped-def]
    return decide_sends(rows, states or {}, FP if fps is None else fps, POLICIES,
                        view or SenderView(), NOW)


def test_due_rows_are_sent_up_to_the_destinations_concurrency() -> None:
    assert plan([row(1), row(2), row(3), row(4, "completion:b")]).send == (1, 2, 4)


def test_rows_not_yet_due_wait_for_their_backoff() -> None:
    assert plan([row(1, next_at=NOW + 1), row(2)]).send == (2,)


def test_rows_in_flight_count_against_the_concurrency() -> None:
    view = SenderView({"completion:a": frozenset({1})})
    assert plan([row(1, status=SENDING, claimed_until=NOW + 9), row(2), row(3)],
                view=view).send == (2,)


def test_a_claim_that_outlived_its_sender_is_taken_again_but_a_live_one_is_not() -> None:
    rows = [row(1, status=SENDING, claimed_until=NOW - 1),
            row(2, "completion:b", status=SENDING, claimed_until=NOW + 1)]
    assert plan(rows).send == (1,)


def test_an_ordered_destination_sends_only_its_oldest_row() -> None:
    rows = [row(1, "alert:slack", next_at=NOW + 5_000), row(2, "alert:slack")]
    assert plan(rows).send == ()  # the recovery never overtakes the alert
    assert plan([row(1, "alert:slack"), row(2, "alert:slack")]).send == (1,)


def test_a_paced_destination_starts_at_most_one_row_per_interval() -> None:
    rows = [row(1, "alert:slack")]
    assert plan(rows, view=SenderView(last_start_ms={"alert:slack": NOW - 999})).send == ()
    assert plan(rows, view=SenderView(last_start_ms={"alert:slack": NOW - 1000})).send == (1,)


def test_a_blocked_destination_waits_until_its_retry_after() -> None:
    blocked = {"completion:a": DestinationState("completion:a", blocked_until_ms=NOW + 1)}
    assert plan([row(1), row(2, "completion:b")], blocked).send == (2,)


def test_a_fatal_destination_stops_until_its_url_changes() -> None:
    fatal = {"completion:a": DestinationState("completion:a", "HTTP 410", "fa")}
    assert plan([row(1)], fatal).send == ()
    moved = plan([row(1)], fatal, fps={"completion:a": "new"})
    assert (moved.send, moved.revive) == ((1,), ("completion:a",))


def test_rows_of_a_destination_that_is_not_configured_any_more_are_abandoned() -> None:
    view = SenderView({"completion:a": frozenset({2})})
    result = plan([row(1), row(2, status=SENDING, claimed_until=NOW + 1)], view=view,
                  fps={"completion:a": None})
    assert (result.send, result.abandon) == ((), (1,))


def test_a_url_fingerprint_is_short_stable_and_not_the_url() -> None:
    url = "https://hooks.slack.com/services/T0/B0/secret"
    assert url_fingerprint(url) == url_fingerprint(url)
    assert len(url_fingerprint(url)) == 16 and "secret" not in url_fingerprint(url)


@pytest.mark.parametrize(("sink", "result", "verdict"), [
    (SinkKind.COMPLETION, AttemptResult(200), Verdict.DELIVERED),
    (SinkKind.COMPLETION, AttemptResult(204), Verdict.DELIVERED),
    (SinkKind.COMPLETION, AttemptResult(500), Verdict.RETRY),
    (SinkKind.COMPLETION, AttemptResult(503), Verdict.RETRY),
    (SinkKind.COMPLETION, AttemptResult(429), Verdict.RETRY),
    (SinkKind.COMPLETION, AttemptResult(408), Verdict.RETRY),
    (SinkKind.COMPLETION, AttemptResult(error_class="ConnectError"), Verdict.RETRY),
    (SinkKind.COMPLETION, AttemptResult(error_class="TimeoutError"), Verdict.RETRY),
    (SinkKind.COMPLETION, AttemptResult(error_class="UnsupportedProtocol"), Verdict.FATAL),
    (SinkKind.COMPLETION, AttemptResult(404), Verdict.FATAL),
    (SinkKind.COMPLETION, AttemptResult(410), Verdict.FATAL),
    (SinkKind.COMPLETION, AttemptResult(401), Verdict.FATAL),
    (SinkKind.COMPLETION, AttemptResult(400), Verdict.REJECTED),
    (SinkKind.COMPLETION, AttemptResult(422), Verdict.REJECTED),
    (SinkKind.COMPLETION, AttemptResult(301), Verdict.REJECTED),
    (SinkKind.SLACK, AttemptResult(200, body_hint="ok"), Verdict.DELIVERED),
    (SinkKind.SLACK, AttemptResult(404, body_hint="no_service"), Verdict.FATAL),
    (SinkKind.SLACK, AttemptResult(410, body_hint="channel_is_archived"), Verdict.FATAL),
    (SinkKind.SLACK, AttemptResult(400, body_hint="channel_is_archived"), Verdict.FATAL),
    (SinkKind.SLACK, AttemptResult(400, body_hint="invalid_payload"), Verdict.REJECTED),
    (SinkKind.WEBHOOK, AttemptResult(400, body_hint="no_service"), Verdict.REJECTED),
])
def test_every_answer_has_one_verdict(sink: SinkKind, result: AttemptResult,
                                      verdict: Verdict) -> None:
    assert classify_attempt(sink, result) is verdict


@pytest.mark.parametrize(("header", "delay_ms"), [
    ("7", 7_000), ("0", 0), (" 12 ", 12_000), ("999999", MAX_RETRY_AFTER_MS),
    ("Tue, 14 Nov 2023 22:13:30 GMT", 10_000),  # NOW is 22:13:20 GMT
    ("Tue, 14 Nov 2023 22:13:00 GMT", 0), (None, None), ("", None), ("soon", None),
    ("-3", None),
])
def test_retry_after_is_read_as_seconds_or_a_date(header: str | None,
                                                  delay_ms: int | None) -> None:
    assert parse_retry_after(header, NOW) == delay_ms


RETRY = RetryPolicy(base_s=1.0, max_s=60.0, jitter=0.0)
EXPIRES = NOW + 3_600_000


def settle(result: AttemptResult, attempts: int = 1, expires: int = EXPIRES,
           sink: SinkKind = SinkKind.COMPLETION):  # type: ignore[no-untyped-def]
    return decide_settlement(sink, result, attempts, expires, RETRY, NOW, 0.0)


def test_a_delivered_row_is_done_and_unblocks_its_destination() -> None:
    s = settle(AttemptResult(200))
    assert (s.status, s.blocked_until_ms, s.error) == (DeliveryStatus.DELIVERED, 0, None)


def test_a_failure_backs_off_exponentially_per_attempt() -> None:
    assert [settle(AttemptResult(500), n).next_attempt_at_ms - NOW for n in (1, 2, 3, 10)] == [
        1_000, 2_000, 4_000, 60_000]
    assert settle(AttemptResult(500)).error == "HTTP 500"


def test_a_429_blocks_the_destination_for_its_retry_after() -> None:
    s = settle(AttemptResult(429, retry_after="30"))
    assert (s.status, s.next_attempt_at_ms, s.blocked_until_ms) == (
        DeliveryStatus.PENDING, NOW + 30_000, NOW + 30_000)


def test_a_rejected_row_is_given_up_at_once() -> None:
    s = settle(AttemptResult(400))
    assert (s.status, s.error) == (DeliveryStatus.DEAD, "rejected: HTTP 400")


def test_a_fatal_answer_keeps_the_row_waiting_for_a_new_url() -> None:
    s = settle(AttemptResult(410, body_hint="gone"))
    assert (s.verdict, s.status, s.error) == (Verdict.FATAL, DeliveryStatus.PENDING,
                                              "destination: HTTP 410 gone")


def test_a_retry_past_the_max_age_gives_the_row_up() -> None:
    s = settle(AttemptResult(error_class="ConnectError"), attempts=3, expires=NOW + 1_000)
    assert (s.status, s.error) == (DeliveryStatus.DEAD,
                                   "expired after 3 attempt(s): ConnectError")


@pytest.mark.parametrize(("text", "hint"), [
    ("no_service", "no_service"), ("channel_is_archived\n", "channel_is_archived"),
    ("ok", "ok"), ("", None), ("<html>", None), ("x" * 80, None),
])
def test_the_body_hint_is_one_plain_word(text: str, hint: str | None) -> None:
    assert body_hint(text) == hint
