"""The fleet's own alert signals: a systemic outage the watchdog refused to act on, and agents
whose circuit breaker went dormant (dead long enough that probing slowed to a trickle).

Pure: given what the stores say now, ``decide_fleet_signals`` returns the full set of signals
active per source, which the alert service turns into alerts on a green -> red change only (an
absent key clears its incident). No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from shepherd.core.circuit import Circuit, CircuitState
from shepherd.core.signals import Severity, Signal, SignalKey

WATCHDOG_SOURCE = "watchdog"
BREAKER_SOURCE = "breaker"
SYSTEMIC_KIND = "systemic"
DORMANT_KIND = "dormant"
FLEET_ENTITY = "fleet"


@dataclass(frozen=True, slots=True)
class SystemicState:
    """The watchdog's last cycle: whether it found most of the fleet unreachable at once."""

    systemic: bool
    unreachable: Sequence[str] = ()
    agents: int = 0


def decide_fleet_signals(
    systemic: SystemicState | None, circuits: Iterable[Circuit], now_ms: int
) -> Mapping[str, list[Signal]]:
    """Every signal active now, per source: an empty list clears the source's incidents. With
    ``systemic`` unknown (no full watchdog cycle seen yet) the watchdog source is left out, so
    an open systemic incident is neither cleared nor repeated."""
    signals: dict[str, list[Signal]] = {
        BREAKER_SOURCE: [_dormant(c, now_ms) for c in sorted(circuits, key=lambda c: c.agent)
                         if c.state is CircuitState.DORMANT],
    }
    if systemic is not None:
        signals[WATCHDOG_SOURCE] = [_systemic(systemic)] if systemic.systemic else []
    return signals


def _systemic(state: SystemicState) -> Signal:
    down = sorted(state.unreachable)
    return Signal(
        SignalKey(WATCHDOG_SOURCE, SYSTEMIC_KIND, FLEET_ENTITY), Severity.CRITICAL,
        f"{len(down)} of {state.agents} agents unreachable at once: the watchdog suspects this "
        "control plane's network and recovers nothing until the fleet answers again",
        forensics=tuple(f"unreachable: {name}" for name in down),
        runbook="check the control plane host's network and DNS first; the agents themselves "
                "are probably fine",
    )


def _dormant(circuit: Circuit, now_ms: int) -> Signal:
    since = circuit.opened_at_ms
    dead_for = f" for {(now_ms - since) // 60_000} min" if since is not None else ""
    return Signal(
        SignalKey(BREAKER_SOURCE, DORMANT_KIND, circuit.agent), Severity.MAJOR,
        f"agent {circuit.agent} has not answered{dead_for}: its circuit is dormant after "
        f"{circuit.failed_probes} failed probes, its backlog stays queued",
        forensics=tuple(r for r in (f"last reason: {circuit.reason}" if circuit.reason else "",)
                        if r),
        runbook=f"restart the agent's runtime, or `shepherd agents reset-circuit {circuit.agent}`"
                " once it answers",
    )
