"""The alert decision table: every phase x active/inactive x policy, and the issue's sequences."""

from __future__ import annotations

import itertools

import pytest

from shepherd.core.alerting import (
    DEFAULT_POLICY,
    AlertAction,
    AlertPhase,
    AlertPolicy,
    AlertState,
    decide,
)
from shepherd.core.signals import MAX_FORENSIC_ROWS, Severity, Signal, SignalKey

A, P = AlertAction, AlertPhase
T0 = 1_700_000_000_000
MIN = 60_000
IMMEDIATE = AlertPolicy(pending_s=0, realert_s=600)
PENDING = AlertPolicy(pending_s=120, realert_s=600)
NEVER = AlertPolicy(pending_s=0, realert_s=None)
QUIET = AlertPolicy(pending_s=0, realert_s=600, send_recovery=False)


def run(policy: AlertPolicy, steps: list[tuple[int, bool]]) -> list[AlertAction]:
    """Feed (minutes after T0, active) steps through decide; the actions taken."""
    state: AlertState | None = None
    actions = []
    for minutes, active in steps:
        action, state = decide(state, active, T0 + minutes * MIN, policy)
        actions.append(action)
    return actions


def test_first_breach_alerts_once() -> None:
    assert run(IMMEDIATE, [(0, True), (1, True)]) == [A.ALERT, A.NONE]


def test_within_cooldown_nothing_then_realert_after_it() -> None:
    assert run(IMMEDIATE, [(0, True), (9, True), (10, True), (15, True), (20, True)]) == [
        A.ALERT, A.NONE, A.REALERT, A.NONE, A.REALERT]


def test_never_realerts_when_the_policy_says_never() -> None:
    assert run(NEVER, [(0, True), (10_000, True)]) == [A.ALERT, A.NONE]


def test_clearing_sends_exactly_one_recovery_then_nothing() -> None:
    assert run(IMMEDIATE, [(0, True), (1, False), (2, False), (3, False)]) == [
        A.ALERT, A.RECOVERY, A.NONE, A.NONE]


def test_no_recovery_when_the_policy_sends_none() -> None:
    assert run(QUIET, [(0, True), (1, False)]) == [A.ALERT, A.NONE]


def test_red_green_red_alerts_again_and_remembers_when_it_was_last_red() -> None:
    assert run(IMMEDIATE, [(0, True), (5, False), (30, True)]) == [A.ALERT, A.RECOVERY, A.ALERT]
    state: AlertState | None = None
    for minutes, active in [(0, True), (5, False), (30, True)]:
        _, state = decide(state, active, T0 + minutes * MIN, IMMEDIATE)
    assert state == AlertState(P.FIRING, T0 + 30 * MIN, T0 + 30 * MIN, T0 + 5 * MIN, 2)


def test_flapping_inside_the_pending_period_never_alerts() -> None:
    steps = [(0, True), (1, False), (2, True), (3, False), (4, True), (5, False), (6, False)]
    assert set(run(PENDING, steps)) == {A.NONE}


def test_a_condition_active_for_the_pending_period_alerts_once() -> None:
    assert run(PENDING, [(0, True), (1, True), (2, True), (3, True)]) == [
        A.NONE, A.NONE, A.ALERT, A.NONE]


def test_nothing_active_and_nothing_remembered_stays_nothing() -> None:
    assert decide(None, False, T0, DEFAULT_POLICY) == (A.NONE, None)


# The exhaustive table: (phase before, active, elapsed vs pending/realert) -> (action, phase after)
STATES = {
    "none": None,
    "clear": AlertState(P.CLEAR, T0, last_red_ms=T0, incidents=1),
    "pending-fresh": AlertState(P.PENDING, T0 + 9 * MIN),
    "pending-ripe": AlertState(P.PENDING, T0),
    "firing-fresh": AlertState(P.FIRING, T0, last_sent_ms=T0 + 9 * MIN, incidents=1),
    "firing-due": AlertState(P.FIRING, T0, last_sent_ms=T0, incidents=1),
}
NOW = T0 + 10 * MIN  # pending period 2 min, re-alert interval 10 min
TABLE_POLICY = AlertPolicy(pending_s=120, realert_s=600)
EXPECTED = {
    ("none", True): (A.NONE, P.PENDING),
    ("none", False): (A.NONE, None),
    ("clear", True): (A.NONE, P.PENDING),
    ("clear", False): (A.NONE, P.CLEAR),
    ("pending-fresh", True): (A.NONE, P.PENDING),
    ("pending-fresh", False): (A.NONE, P.CLEAR),
    ("pending-ripe", True): (A.ALERT, P.FIRING),
    ("pending-ripe", False): (A.NONE, P.CLEAR),
    ("firing-fresh", True): (A.NONE, P.FIRING),
    ("firing-fresh", False): (A.RECOVERY, P.CLEAR),
    ("firing-due", True): (A.REALERT, P.FIRING),
    ("firing-due", False): (A.RECOVERY, P.CLEAR),
}


@pytest.mark.parametrize(("name", "active"), list(itertools.product(STATES, [True, False])))
def test_every_state_and_input_has_one_outcome(name: str, active: bool) -> None:
    action, after = decide(STATES[name], active, NOW, TABLE_POLICY)
    assert (action, after.phase if after else None) == EXPECTED[(name, active)]


def test_an_alert_counts_the_incident_and_a_recovery_marks_last_red() -> None:
    _, opened = decide(STATES["pending-ripe"], True, NOW, TABLE_POLICY)
    assert opened is not None and (opened.incidents, opened.last_sent_ms) == (1, NOW)
    _, closed = decide(opened, False, NOW + MIN, TABLE_POLICY)
    assert closed == AlertState(P.CLEAR, NOW + MIN, last_red_ms=NOW + MIN, incidents=1)


def test_a_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        AlertPolicy(pending_s=-1)
    with pytest.raises(ValueError):
        AlertPolicy(realert_s=0)


def test_a_signal_keeps_a_bounded_excerpt_and_counts_the_rest() -> None:
    key = SignalKey("canary", "S-01", "agent-a")
    signal = Signal(key, Severity.CRITICAL, "x" * 2000, tuple(f"row {i}" for i in range(200)))
    assert (len(signal.forensics), signal.forensic_total) == (MAX_FORENSIC_ROWS, 200)
    assert len(signal.summary) == 500 and key.label == "canary/S-01/agent-a"
    with pytest.raises(ValueError):
        SignalKey("canary", "has space", "e")
