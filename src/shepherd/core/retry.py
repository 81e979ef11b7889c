"""The retry policy: whether a failed attempt gets a new one, and not before when.

A failure is retried automatically only when the fault was the infrastructure's — the runtime
restarted under the child, the runtime has no record of it, the agent was lost — and attempts
remain. A failure of the child's own making (a non-zero exit, its timeout, an early exit) is
retried only when the execution says ``retry_on_failure``. Anything else (terminated by an
operator or as a stray, rejected, expired, an error class this table does not know) is never
retried: a second run of work whose first run may have done its job is worse than no retry.
A refused dispatch never reaches this module: the runtime did not accept it, so the same attempt
simply goes back to the backlog.

Pure: the jitter draw is derived from the execution id, so a burst of retries spreads out and the
same row always gets the same delay.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import StrEnum

from shepherd.core.backoff import compute_backoff

# The delay before a first retry: long enough for a runtime that just restarted to settle.
DEFAULT_RETRY_BACKOFF_BASE_S = 2.0
# Doubling stops here: an attempt that keeps failing retries every five minutes at most.
DEFAULT_RETRY_BACKOFF_MAX_S = 300.0
# Half of each delay is spread by the draw, so a burst of retries does not start in one instant.
RETRY_JITTER = 0.5
# One attempt unless a fleet says otherwise: a second run is a choice, never a surprise.
DEFAULT_MAX_ATTEMPTS = 1
# No work is worth more tries than this; the bound keeps a typo from retrying for days.
MAX_ATTEMPTS_LIMIT = 20


class FailureKind(StrEnum):
    INFRASTRUCTURE = "infrastructure"  # retried while attempts remain
    CHILD = "child"  # retried only with retry_on_failure
    NEVER = "never"


# error_class of the failed attempt -> what kind of failure it was. Absent: NEVER.
FAILURE_KINDS: dict[str, FailureKind] = {
    "runtime_restarted": FailureKind.INFRASTRUCTURE,
    "orphaned": FailureKind.INFRASTRUCTURE,
    "agent_lost": FailureKind.INFRASTRUCTURE,
    "exit_code": FailureKind.CHILD,
    "timed_out": FailureKind.CHILD,
    "child_exited_early": FailureKind.CHILD,
    "spawn_failed": FailureKind.CHILD,
    # Explicitly never: stopped on purpose, refused by the runtime, or an unknown result (the
    # child may have succeeded).
    "terminated": FailureKind.NEVER,
    "dispatch_rejected": FailureKind.NEVER,
    "expired": FailureKind.NEVER,
    "no_exit_code": FailureKind.NEVER,
    # The reaper's: a result nobody can read any more, or a run past every limit, may have done
    # its work; and a backstopped child may still run on a runtime nobody reaches.
    "result_lost": FailureKind.NEVER,
    "backstop": FailureKind.NEVER,
}


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    base_s: float = DEFAULT_RETRY_BACKOFF_BASE_S
    max_s: float = DEFAULT_RETRY_BACKOFF_MAX_S
    jitter: float = RETRY_JITTER


@dataclass(frozen=True, slots=True)
class Attempt:
    """What the policy needs to know about the attempt that failed."""

    execution_id: str
    attempt: int
    max_attempts: int
    retry_on_failure: bool


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """Queue attempt ``attempt`` (linked to the failed one), not before ``not_before_ms``."""

    attempt: int
    not_before_ms: int
    reason: str


def failure_kind(error_class: str | None) -> FailureKind:
    return FAILURE_KINDS.get(error_class or "", FailureKind.NEVER)


def decide_retry(
    failed: Attempt, error_class: str | None, now_ms: int, backoff: BackoffPolicy
) -> RetryPlan | None:
    """The next attempt of ``failed``, or None when the policy says it ends here."""
    kind = failure_kind(error_class)
    if kind is FailureKind.NEVER or failed.attempt >= failed.max_attempts:
        return None
    if kind is FailureKind.CHILD and not failed.retry_on_failure:
        return None
    delay_s = compute_backoff(
        failed.attempt - 1, backoff.base_s, backoff.max_s, backoff.jitter,
        jitter_draw(failed.execution_id),
    )
    nxt = failed.attempt + 1
    return RetryPlan(
        attempt=nxt,
        not_before_ms=now_ms + round(delay_s * 1000),
        reason=(f"attempt {nxt} of {failed.max_attempts} after {error_class} "
                f"(not before {delay_s:.1f} s from now)"),
    )


def jitter_draw(key: str) -> float:
    """A number in [0, 1) fixed by ``key``: the jitter of one row, without a random source."""
    return zlib.crc32(key.encode("utf-8")) / 2**32
