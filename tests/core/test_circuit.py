"""The circuit breaker's pure decisions: cooldowns, what is due, what a probe leads to."""

from __future__ import annotations

import pytest

from shepherd.core.circuit import (
    Circuit,
    CircuitPolicy,
    CircuitState,
    ProbeOutcome,
    TransitionKind,
    cooldown_ms,
    decide_probe_outcome,
    decide_probes,
    dormant,
    first_probe_at_ms,
    needs_confirmation,
    probe_due,
    retry_after_s,
)
from shepherd.core.classification import Verdict

S, K = CircuitState, TransitionKind
POLICY = CircuitPolicy()
NOW = 1_700_000_000_000


@pytest.mark.parametrize(
    ("failed_probes", "seconds"),
    [(0, 30), (1, 60), (2, 120), (3, 240), (4, 300), (5, 300), (9, 300), (40, 300)],
)
def test_the_cooldown_starts_at_30_s_and_doubles_per_failed_probe_up_to_300_s(
    failed_probes: int, seconds: int
) -> None:
    assert cooldown_ms(failed_probes, POLICY) == seconds * 1000


def test_a_circuit_opening_now_is_first_probed_one_base_cooldown_later() -> None:
    assert first_probe_at_ms(NOW, POLICY) == NOW + 30_000


@pytest.mark.parametrize(
    ("circuit", "due"),
    [
        (Circuit("a"), False),
        (Circuit("a", failures=2), False),
        (Circuit("a", S.OPEN, next_probe_at_ms=NOW + 1), False),
        (Circuit("a", S.OPEN, next_probe_at_ms=NOW), True),
        (Circuit("a", S.OPEN, next_probe_at_ms=None), True),
        (Circuit("a", S.DORMANT, next_probe_at_ms=NOW - 1), True),
        (Circuit("a", S.DORMANT, next_probe_at_ms=NOW + 3_600_000), False),
        (Circuit("a", S.HALF_OPEN, probe_until_ms=NOW + 1), False),
        (Circuit("a", S.HALF_OPEN, probe_until_ms=NOW), True),  # its owner went silent
        (Circuit("a", S.HALF_OPEN, probe_until_ms=None), False),
    ],
)
def test_which_circuits_are_due_a_probe(circuit: Circuit, due: bool) -> None:
    assert probe_due(circuit, NOW) is due


@pytest.mark.parametrize(
    ("circuit", "needed"),
    [
        (Circuit("a", failures=2, failing_replicas={"b": NOW}), False),  # below the threshold
        (Circuit("a", failures=3, failing_replicas={"b": NOW}), True),
        (Circuit("a", failures=5, failing_replicas={"b": NOW, "me": NOW - 1}), False),  # mine
        (Circuit("a", failures=3, failing_replicas={"me": NOW - 60_001}), True),  # mine, stale
        (Circuit("a", S.OPEN, failures=3, failing_replicas={"b": NOW}), False),
    ],
)
def test_a_replica_confirms_only_a_held_circuit_it_has_not_failed_recently(
    circuit: Circuit, needed: bool
) -> None:
    assert needs_confirmation(circuit, "me", NOW, POLICY) is needed


def test_the_plan_probes_due_circuits_and_confirms_held_ones() -> None:
    circuits = [
        Circuit("closed"),
        Circuit("due", S.OPEN, next_probe_at_ms=NOW - 1),
        Circuit("waiting", S.OPEN, next_probe_at_ms=NOW + 1),
        Circuit("held", failures=3, failing_replicas={"other": NOW}),
    ]
    plan = decide_probes(circuits, "me", NOW, POLICY)
    assert (plan.probe, plan.confirm) == (("due",), ("held",))


@pytest.mark.parametrize(
    ("circuit", "verdict", "outcome"),
    [
        (Circuit("a", S.HALF_OPEN, failed_probes=4), Verdict.SUCCESS,
         ProbeOutcome(K.CLOSED, S.CLOSED, 0, None)),
        (Circuit("a", S.HALF_OPEN, failed_probes=0), Verdict.FAILURE,
         ProbeOutcome(K.REOPENED, S.OPEN, 1, NOW + 60_000)),
        (Circuit("a", S.HALF_OPEN, failed_probes=3), Verdict.FAILURE,
         ProbeOutcome(K.REOPENED, S.OPEN, 4, NOW + 300_000)),
        (Circuit("a", S.HALF_OPEN, failed_probes=9), Verdict.FAILURE,
         ProbeOutcome(K.DORMANT, S.DORMANT, 10, NOW + 3_600_000)),
        (Circuit("a", S.HALF_OPEN, failed_probes=12), Verdict.FAILURE,
         ProbeOutcome(K.DORMANT, S.DORMANT, 13, NOW + 3_600_000)),
        (Circuit("a", S.HALF_OPEN, failed_probes=2), Verdict.NEUTRAL,
         ProbeOutcome(K.INCONCLUSIVE, S.OPEN, 2, NOW + 120_000)),
        (Circuit("a", S.HALF_OPEN, failed_probes=10), Verdict.NEUTRAL,
         ProbeOutcome(K.INCONCLUSIVE, S.DORMANT, 10, NOW + 3_600_000)),
    ],
)
def test_what_a_probe_verdict_does_to_the_circuit(
    circuit: Circuit, verdict: Verdict, outcome: ProbeOutcome
) -> None:
    assert decide_probe_outcome(circuit, verdict, NOW, POLICY) == outcome


def test_ten_failed_probes_in_a_row_make_a_circuit_dormant() -> None:
    circuit, kinds = Circuit("a", S.HALF_OPEN), []
    for _ in range(11):
        outcome = decide_probe_outcome(circuit, Verdict.FAILURE, NOW, POLICY)
        kinds.append(outcome.kind)
        circuit = Circuit("a", S.HALF_OPEN, failed_probes=outcome.failed_probes)
    assert kinds == [K.REOPENED] * 9 + [K.DORMANT] * 2


@pytest.mark.parametrize(
    ("circuit", "wait_s"),
    [
        (Circuit("a"), 1.0),
        (Circuit("a", failures=2), 1.0),
        (Circuit("a", S.HALF_OPEN), 1.0),
        (Circuit("a", S.OPEN, next_probe_at_ms=NOW + 12_000), 12.0),
        (Circuit("a", S.OPEN, next_probe_at_ms=NOW + 200), 1.0),  # never below the floor
        (Circuit("a", S.OPEN, next_probe_at_ms=NOW - 5_000), 1.0),  # probe overdue
        (Circuit("a", S.DORMANT, next_probe_at_ms=NOW + 3_600_000), 30.0),  # capped
        (Circuit("a", S.OPEN, next_probe_at_ms=None), 1.0),
    ],
)
def test_a_caller_waits_as_the_circuit_says(circuit: Circuit, wait_s: float) -> None:
    assert retry_after_s(circuit, NOW, 1.0, 30.0) == wait_s


def test_only_a_closed_circuit_admits_calls() -> None:
    assert [Circuit("a", state).admits for state in CircuitState] == [True, False, False, False]


def test_dormant_lists_dormant_circuits_by_agent() -> None:
    circuits = [Circuit("z", S.DORMANT), Circuit("b"), Circuit("a", S.DORMANT),
                Circuit("c", S.OPEN)]
    assert [c.agent for c in dormant(circuits)] == ["a", "z"]
