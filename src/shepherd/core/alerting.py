"""The one alert decision: when a person is told about a signal (DESIGN.md section 8).

``decide(previous, active, now_ms, policy) -> (action, state)`` for every alerting source:

- a condition that turns active is first ``pending``; it alerts (ALERT) once it stayed active for
  the policy's pending period (at once when that is 0). One that clears within it never alerts;
- while it stays active, nothing (NONE) until the re-alert interval passed since the last message,
  then REALERT (never, when the interval is None);
- when it clears after alerting, exactly one RECOVERY (or NONE when the policy sends none), and
  the state remembers when it was last red, so a re-opened incident can say "last red N min ago";
- still clear: NONE. Red, green, red again: a new incident, ALERT again.

Pure: no I/O, no clock. The alert service persists the returned state in SQL, so a restart
neither alerts again nor forgets an open incident.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class AlertAction(StrEnum):
    ALERT = "alert"
    NONE = "none"
    REALERT = "realert"
    RECOVERY = "recovery"


class AlertPhase(StrEnum):
    CLEAR = "clear"  # not active (after an incident, or after a flap inside the pending period)
    PENDING = "pending"  # active, not yet for the pending period
    FIRING = "firing"  # an open incident: a person has been told


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    pending_s: float = 0.0  # active this long before the first ALERT
    realert_s: float | None = 3600.0  # remind this often while it stays active; None = never
    send_recovery: bool = True

    def __post_init__(self) -> None:
        if self.pending_s < 0 or (self.realert_s is not None and self.realert_s <= 0):
            raise ValueError("pending_s must be >= 0 and realert_s > 0 (or None)")


# An hour between reminders: an open incident stays in view without paging every minute.
DEFAULT_POLICY = AlertPolicy()


@dataclass(frozen=True, slots=True)
class AlertState:
    phase: AlertPhase
    since_ms: int  # when the current phase began (pending since, firing since, clear since)
    last_sent_ms: int | None = None  # the last ALERT or REALERT of the open incident
    last_red_ms: int | None = None  # when the last incident ended (for "last red N min ago")
    incidents: int = 0  # incidents opened so far


def decide(
    previous: AlertState | None, active: bool, now_ms: int, policy: AlertPolicy
) -> tuple[AlertAction, AlertState | None]:
    """The action to take now and the state to store (None: nothing to remember)."""
    phase = previous.phase if previous else AlertPhase.CLEAR
    if not active:
        return _clear(previous, now_ms, policy)
    if phase is AlertPhase.FIRING:
        assert previous is not None
        return _still_firing(previous, now_ms, policy)
    if phase is AlertPhase.PENDING:
        assert previous is not None
        started = previous
    else:
        started = AlertState(
            AlertPhase.PENDING, now_ms,
            last_red_ms=previous.last_red_ms if previous else None,
            incidents=previous.incidents if previous else 0,
        )
    if now_ms - started.since_ms >= policy.pending_s * 1000:
        opened = replace(started, phase=AlertPhase.FIRING, since_ms=now_ms, last_sent_ms=now_ms,
                         incidents=started.incidents + 1)
        return AlertAction.ALERT, opened
    return AlertAction.NONE, started


def _still_firing(
    previous: AlertState, now_ms: int, policy: AlertPolicy
) -> tuple[AlertAction, AlertState]:
    last = previous.last_sent_ms if previous.last_sent_ms is not None else previous.since_ms
    if policy.realert_s is not None and now_ms - last >= policy.realert_s * 1000:
        return AlertAction.REALERT, replace(previous, last_sent_ms=now_ms)
    return AlertAction.NONE, previous


def _clear(
    previous: AlertState | None, now_ms: int, policy: AlertPolicy
) -> tuple[AlertAction, AlertState | None]:
    if previous is None:
        return AlertAction.NONE, None
    if previous.phase is AlertPhase.FIRING:
        cleared = AlertState(AlertPhase.CLEAR, now_ms, last_red_ms=now_ms,
                             incidents=previous.incidents)
        return (AlertAction.RECOVERY if policy.send_recovery else AlertAction.NONE), cleared
    if previous.phase is AlertPhase.PENDING:
        # A flap inside the pending period: nobody was told, so nothing to recover from.
        return AlertAction.NONE, replace(previous, phase=AlertPhase.CLEAR, since_ms=now_ms)
    return AlertAction.NONE, previous
