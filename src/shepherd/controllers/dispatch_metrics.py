"""What the dispatcher counts: how long work waited, how long a hand-off took, what was refused.

Process-local instruments (``shepherd.telemetry``), counted by the replica that dispatched:
- ``shepherd_queue_wait_seconds{agent}``: from the moment a row became eligible (submitted, or
  its retry backoff over) to the dispatch decision that claimed it;
- ``shepherd_dispatch_latency_seconds{agent}``: from that decision to the runtime's answer, so
  it holds the slot acquire, the CAS and the start request;
- ``shepherd_dispatch_outcomes_total{agent,outcome}``: every hand-off by how it ended
  (``started``, ``refused`` back to the backlog, ``rejected`` as failed, ``ambiguous`` when the
  connection dropped mid-request). ``refused`` is the figure an operator alerts on.

It only records; it never decides anything and never raises into the dispatcher.
"""

from __future__ import annotations

from enum import Enum

from shepherd.core.models import Execution
from shepherd.telemetry import Telemetry

# From a row claimed at once to one that waited behind a long backlog: seconds.
QUEUE_WAIT_BUCKETS_S: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
)


class DispatchOutcome(Enum):
    STARTED = "started"
    REFUSED = "refused"
    REJECTED = "rejected"
    AMBIGUOUS = "ambiguous"


class DispatchMetrics:
    def __init__(self, telemetry: Telemetry | None = None) -> None:
        t = telemetry or Telemetry()
        self._wait = t.histogram(
            "shepherd_queue_wait_seconds",
            "Time from a row becoming eligible to the dispatch decision that claimed it.",
            ["agent"], buckets=QUEUE_WAIT_BUCKETS_S,
        )
        self._latency = t.histogram(
            "shepherd_dispatch_latency_seconds",
            "Time from a dispatch decision to the runtime's answer to the start request.",
            ["agent"],
        )
        self._outcomes = t.counter(
            "shepherd_dispatch_outcomes",
            "Hand-offs to a runtime by outcome (refused: back to the backlog).",
            ["agent", "outcome"],
        )

    def claimed(self, row: Execution, decided_at_ms: int) -> None:
        eligible_ms = max(row.created_at_ms, row.not_before_ms or 0)
        self._wait.labels(row.agent).observe(max(0, decided_at_ms - eligible_ms) / 1000)

    def answered(
        self, agent: str, outcome: DispatchOutcome, decided_at_ms: int, now_ms: int
    ) -> None:
        self._outcomes.labels(agent, outcome.value).inc()
        self._latency.labels(agent).observe(max(0, now_ms - decided_at_ms) / 1000)
