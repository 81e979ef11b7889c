"""The fleet's own signals, decided from plain values: systemic outage and dormant circuits."""

from __future__ import annotations

import pytest

from shepherd.core.circuit import Circuit
from shepherd.core.circuit import CircuitState as C
from shepherd.core.fleet_signals import (
    BREAKER_SOURCE,
    WATCHDOG_SOURCE,
    SystemicState,
    decide_fleet_signals,
)
from shepherd.core.signals import Severity

NOW = 10_000_000


@pytest.mark.parametrize(
    ("systemic", "expected"),
    [
        (None, None),  # no full cycle seen yet: leave the source alone
        (SystemicState(False, (), 3), []),
        (SystemicState(True, ("a", "b"), 3), ["watchdog/systemic/fleet"]),
    ],
)
def test_the_watchdog_source_follows_its_last_full_verdict(
    systemic: SystemicState | None, expected: list[str] | None
) -> None:
    signals = decide_fleet_signals(systemic, [], NOW)
    got = signals.get(WATCHDOG_SOURCE)
    assert (None if got is None else [s.key.label for s in got]) == expected


def test_a_systemic_signal_is_critical_and_names_the_unreachable_agents() -> None:
    [signal] = decide_fleet_signals(SystemicState(True, ("b", "a"), 3), [], NOW)[WATCHDOG_SOURCE]
    assert signal.severity is Severity.CRITICAL
    assert signal.summary.startswith("2 of 3 agents unreachable at once")
    assert signal.forensics == ("unreachable: a", "unreachable: b")
    assert signal.runbook and "network" in signal.runbook


@pytest.mark.parametrize(
    ("state", "fires"),
    [(C.CLOSED, False), (C.OPEN, False), (C.HALF_OPEN, False), (C.DORMANT, True)],
)
def test_only_a_dormant_circuit_raises_a_breaker_signal(state: C, fires: bool) -> None:
    circuit = Circuit("alpha", state, failed_probes=10, opened_at_ms=NOW - 3_600_000)
    signals = decide_fleet_signals(None, [circuit], NOW)[BREAKER_SOURCE]
    assert [s.key.label for s in signals] == (["breaker/dormant/alpha"] if fires else [])


def test_a_dormant_signal_says_how_long_and_how_to_recover() -> None:
    circuit = Circuit("alpha", C.DORMANT, failed_probes=10, opened_at_ms=NOW - 3_600_000,
                      reason="connection refused")
    [signal] = decide_fleet_signals(None, [circuit], NOW)[BREAKER_SOURCE]
    assert signal.severity is Severity.MAJOR
    assert "for 60 min" in signal.summary and "10 failed probes" in signal.summary
    assert signal.forensics == ("last reason: connection refused",)
    assert signal.runbook and "reset-circuit alpha" in signal.runbook
