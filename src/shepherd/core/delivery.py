"""What one delivery attempt's answer means, and what happens to the row and its destination next.

One table (``classify_attempt``): 2xx delivered; 408/425/429/5xx and every transport failure are
retried with backoff (``core.backoff``), a 429 after its ``Retry-After``; 401/403/404/410 and
Slack's "this webhook is gone" answers (``no_service``, ``channel_is_archived``, ...) are fatal
for the destination, which stops until its URL changes; any other answer rejects that one row
(retrying the same payload cannot help). A row still failing at its max age is given up.
Pure: the sender turns the HTTP exchange into an ``AttemptResult`` and applies the ``Settlement``.
Nothing here may carry a URL: errors are a class name and a status code.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum

from shepherd.core.backoff import compute_backoff
from shepherd.core.outbox import DeliveryStatus, SinkKind

# Slack answers these (in the body) when the webhook or its channel is gone for good.
SLACK_FATAL_ERRORS = frozenset({
    "no_service", "channel_is_archived", "channel_not_found", "invalid_token", "team_disabled",
    "no_team", "action_prohibited", "posting_to_general_channel_denied",
})
RETRYABLE_STATUSES = frozenset({408, 425, 429})
FATAL_STATUSES = frozenset({401, 403, 404, 410})
# A URL that cannot be spoken to at all is a configuration error, not a passing failure.
FATAL_ERRORS = frozenset({"InvalidURL", "UnsupportedProtocol"})
# A Retry-After longer than this is read as this: a receiver must not park alerts for a day.
MAX_RETRY_AFTER_MS = 3_600_000


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # try this row again later
    REJECTED = "rejected"  # this row can never succeed: give it up
    FATAL = "fatal"  # the destination is gone: stop sending to it


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """An HTTP exchange reduced to what may be stored and shown: never the URL."""

    status_code: int | None = None  # None when no response came back
    error_class: str | None = None  # the transport exception's class name
    retry_after: str | None = None  # the raw Retry-After header
    body_hint: str | None = None  # the first word of a short text body (Slack's error code)

    def describe(self) -> str:
        if self.status_code is None:
            return self.error_class or "no response"
        hint = f" {self.body_hint}" if self.body_hint else ""
        return f"HTTP {self.status_code}{hint}"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float
    max_s: float
    jitter: float = 0.5


@dataclass(frozen=True, slots=True)
class Settlement:
    """What to write after an attempt, on the row and on its destination."""

    verdict: Verdict
    status: DeliveryStatus
    next_attempt_at_ms: int
    blocked_until_ms: int  # the destination's; 0 = not blocked
    error: str | None  # short and URL-free: "HTTP 503", "ConnectTimeout", "expired after ..."


def classify_attempt(sink: SinkKind, result: AttemptResult) -> Verdict:
    code = result.status_code
    if sink is SinkKind.SLACK and result.body_hint in SLACK_FATAL_ERRORS:
        return Verdict.FATAL
    if code is None:
        return Verdict.FATAL if result.error_class in FATAL_ERRORS else Verdict.RETRY
    if 200 <= code < 300:
        return Verdict.DELIVERED
    if code in FATAL_STATUSES:
        return Verdict.FATAL
    if code in RETRYABLE_STATUSES or code >= 500:
        return Verdict.RETRY
    return Verdict.REJECTED


def parse_retry_after(value: str | None, now_ms: int) -> int | None:
    """Retry-After as a delay in ms (delta-seconds or an HTTP date), capped; None if unusable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        delay_ms = int(text) * 1000
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        delay_ms = int(when.timestamp() * 1000) - now_ms
    return max(0, min(delay_ms, MAX_RETRY_AFTER_MS))


def decide_settlement(
    sink: SinkKind,
    result: AttemptResult,
    attempts: int,
    expires_at_ms: int,
    retry: RetryPolicy,
    now_ms: int,
    draw: float,
) -> Settlement:
    """The row's next status after its ``attempts``-th attempt (1-based) ended with ``result``."""
    verdict = classify_attempt(sink, result)
    problem = result.describe()
    if verdict is Verdict.DELIVERED:
        return Settlement(verdict, DeliveryStatus.DELIVERED, now_ms, 0, None)
    if verdict is Verdict.REJECTED:
        return Settlement(verdict, DeliveryStatus.DEAD, now_ms, 0, f"rejected: {problem}")
    if verdict is Verdict.FATAL:
        # The row waits (visible) in case the URL is fixed before it expires.
        return Settlement(verdict, DeliveryStatus.PENDING, now_ms, 0, f"destination: {problem}")
    delay_ms = int(compute_backoff(attempts - 1, retry.base_s, retry.max_s, retry.jitter, draw)
                   * 1000)
    blocked_until_ms = 0
    retry_after_ms = parse_retry_after(result.retry_after, now_ms)
    if result.status_code == 429 or retry_after_ms is not None:
        delay_ms = max(delay_ms, retry_after_ms or 0)
        blocked_until_ms = now_ms + delay_ms  # a rate limit holds back the whole destination
    next_at = now_ms + delay_ms
    if next_at > expires_at_ms:
        return Settlement(verdict, DeliveryStatus.DEAD, now_ms, blocked_until_ms,
                          f"expired after {attempts} attempt(s): {problem}")
    return Settlement(verdict, DeliveryStatus.PENDING, next_at, blocked_until_ms, problem)


def body_hint(text: str) -> str | None:
    """The first word of a short plain-text body ("no_service"), else None."""
    words = text.strip().split()
    if not words or len(words[0]) > 64:
        return None
    word = words[0]
    return word if all(c.isalnum() or c == "_" for c in word) else None
