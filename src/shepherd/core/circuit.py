"""The fleet-wide circuit breaker's domain: states, policy, and the pure decisions around them.

One circuit per agent, shared by every control-plane replica (DESIGN.md section 7)::

    closed --failure_threshold consecutive failures (quorum permitting)--> open
    open | dormant --cooldown over, one replica wins the probe--> half_open
    half_open --probe answered--> closed
    half_open --probe failed--> open (cooldown doubles, capped) | dormant (after N failed probes)
    half_open --probe inconclusive--> back where it was, same cooldown
    any --operator reset--> closed

Counting failures, opening and claiming the probe are atomic in Redis (``stores/redis/circuits``);
what is decided here is what needs no atomicity: which circuits are due a probe or a quorum
confirmation, what a probe's verdict leads to, how long a cooldown lasts, how long a caller
should wait. Pure: every function receives ``now_ms``; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from shepherd.core.backoff import compute_backoff
from shepherd.core.classification import Verdict

# Three in a row: one refused connect is a blip, three is an agent that is not there.
DEFAULT_FAILURE_THRESHOLD = 3
# Long enough for a runtime to restart; short enough that a healthy agent is back within a minute.
DEFAULT_COOLDOWN_S = 30.0
# Five minutes between probes of an agent that keeps failing: cheap, and still a quick recovery.
DEFAULT_COOLDOWN_MAX_S = 300.0
# Ten failed probes (about half an hour of cooldowns) means nobody is coming back soon.
DEFAULT_DORMANT_AFTER_PROBES = 10
# A dormant agent costs one /health call an hour.
DEFAULT_DORMANT_PROBE_INTERVAL_S = 3600.0
# Two replicas failing within a minute agree the agent is down; older failures say nothing now.
DEFAULT_QUORUM_WINDOW_S = 60.0
# A claimed probe that has not finished by then belongs to a replica that died: anyone may retake
# it. Longer than one /health call can take (connect 3 s + read 10 s).
DEFAULT_PROBE_LEASE_S = 30.0


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    DORMANT = "dormant"


class TransitionKind(StrEnum):
    """Every state change of a circuit; the label of ``shepherd_circuit_transitions_total``."""

    OPENED = "opened"  # closed -> open
    PROBING = "probing"  # open | dormant -> half_open
    CLOSED = "closed"  # half_open -> closed
    REOPENED = "reopened"  # half_open -> open
    DORMANT = "dormant"  # half_open -> dormant
    INCONCLUSIVE = "inconclusive"  # half_open -> open | dormant, cooldown unchanged
    RESET = "reset"  # operator: any -> closed


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    cooldown_s: float = DEFAULT_COOLDOWN_S
    cooldown_max_s: float = DEFAULT_COOLDOWN_MAX_S
    dormant_after_probes: int = DEFAULT_DORMANT_AFTER_PROBES
    dormant_probe_interval_s: float = DEFAULT_DORMANT_PROBE_INTERVAL_S
    quorum_window_s: float = DEFAULT_QUORUM_WINDOW_S
    probe_lease_s: float = DEFAULT_PROBE_LEASE_S

    @property
    def quorum_window_ms(self) -> int:
        return round(self.quorum_window_s * 1000)

    @property
    def probe_lease_ms(self) -> int:
        return round(self.probe_lease_s * 1000)


@dataclass(frozen=True, slots=True)
class Circuit:
    """One agent's circuit as read from Redis; an agent with no stored state is closed."""

    agent: str
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0  # consecutive, fleet-wide; a success resets it
    failed_probes: int = 0  # in a row since the circuit opened
    opened_at_ms: int | None = None
    next_probe_at_ms: int | None = None
    probe_owner: str | None = None
    probe_until_ms: int | None = None
    changed_at_ms: int | None = None
    reason: str | None = None
    # replica id -> its latest failure (epoch ms), for the quorum guard
    failing_replicas: Mapping[str, int] = field(default_factory=dict)

    @property
    def admits(self) -> bool:
        """Whether an ordinary call may go through: only a closed circuit lets calls pass."""
        return self.state is CircuitState.CLOSED


@dataclass(frozen=True, slots=True)
class CircuitEvent:
    at_ms: int
    kind: TransitionKind
    from_state: CircuitState
    to_state: CircuitState
    reason: str
    by: str  # the replica (or operator) that made the change


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """What a finished probe does to its circuit (applied owner-checked by the store)."""

    kind: TransitionKind
    state: CircuitState
    failed_probes: int
    next_probe_at_ms: int | None


@dataclass(frozen=True, slots=True)
class ProbePlan:
    """What this replica's prober does in one pass."""

    probe: tuple[str, ...] = ()  # open circuits whose cooldown is over: try to win the probe
    confirm: tuple[str, ...] = ()  # closed circuits held open only by the quorum: look for us


def cooldown_ms(failed_probes: int, policy: CircuitPolicy) -> int:
    """30 s after opening, doubling with every failed probe, capped (the defaults)."""
    return round(compute_backoff(failed_probes, policy.cooldown_s, policy.cooldown_max_s, 0, 0)
                 * 1000)


def first_probe_at_ms(now_ms: int, policy: CircuitPolicy) -> int:
    """When a circuit opening now gets its first probe."""
    return now_ms + cooldown_ms(0, policy)


def probe_due(circuit: Circuit, now_ms: int) -> bool:
    """An open or dormant circuit past its cooldown, or a probe whose owner went silent."""
    if circuit.state is CircuitState.HALF_OPEN:
        return circuit.probe_until_ms is not None and circuit.probe_until_ms <= now_ms
    if circuit.state in (CircuitState.OPEN, CircuitState.DORMANT):
        return circuit.next_probe_at_ms is None or circuit.next_probe_at_ms <= now_ms
    return False


def needs_confirmation(
    circuit: Circuit, replica: str, now_ms: int, policy: CircuitPolicy
) -> bool:
    """A closed circuit at its threshold that the quorum keeps closed, and whose recent failures
    all came from other replicas: this replica's own look decides whether it opens."""
    if circuit.state is not CircuitState.CLOSED or circuit.failures < policy.failure_threshold:
        return False
    recent = circuit.failing_replicas.get(replica)
    return recent is None or recent < now_ms - policy.quorum_window_ms


def decide_probes(
    circuits: Iterable[Circuit], replica: str, now_ms: int, policy: CircuitPolicy
) -> ProbePlan:
    probe, confirm = [], []
    for circuit in circuits:
        if probe_due(circuit, now_ms):
            probe.append(circuit.agent)
        elif needs_confirmation(circuit, replica, now_ms, policy):
            confirm.append(circuit.agent)
    return ProbePlan(tuple(probe), tuple(confirm))


def decide_probe_outcome(
    circuit: Circuit, verdict: Verdict, now_ms: int, policy: CircuitPolicy
) -> ProbeOutcome:
    """A probe that got an answer closes the circuit; a failed one lengthens the cooldown (or
    sends the circuit dormant); one that learned nothing (neutral) leaves the cooldown as it was."""
    if verdict is Verdict.SUCCESS:
        return ProbeOutcome(TransitionKind.CLOSED, CircuitState.CLOSED, 0, None)
    failed = circuit.failed_probes + (1 if verdict is Verdict.FAILURE else 0)
    dormant = failed >= policy.dormant_after_probes
    if dormant:
        next_at = now_ms + round(policy.dormant_probe_interval_s * 1000)
    else:
        next_at = now_ms + cooldown_ms(failed, policy)
    state = CircuitState.DORMANT if dormant else CircuitState.OPEN
    if verdict is Verdict.NEUTRAL:
        kind = TransitionKind.INCONCLUSIVE
    else:
        kind = TransitionKind.DORMANT if dormant else TransitionKind.REOPENED
    return ProbeOutcome(kind, state, failed, next_at)


def retry_after_s(circuit: Circuit, now_ms: int, floor_s: float, ceiling_s: float) -> float:
    """How long a caller whose call just failed should wait before trying the agent again.

    Closed or being probed: ``floor_s``. Open or dormant: until the next probe, but at most
    ``ceiling_s``, so a probe that closes the circuit (or an operator reset) is noticed soon.
    """
    if circuit.state in (CircuitState.CLOSED, CircuitState.HALF_OPEN):
        return floor_s
    if circuit.next_probe_at_ms is None:
        return floor_s
    return max(floor_s, min(ceiling_s, (circuit.next_probe_at_ms - now_ms) / 1000))


def dormant(circuits: Iterable[Circuit]) -> list[Circuit]:
    """The dormant circuits, by agent name (what an alert on long-dead agents reads)."""
    return sorted((c for c in circuits if c.state is CircuitState.DORMANT), key=lambda c: c.agent)
