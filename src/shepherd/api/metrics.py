"""Prometheus ``/metrics``: the fleet as the stores see it, plus what this process counted.

The gauges are read fresh at every scrape, so several control-plane replicas answer the same
numbers and a restart loses nothing: ``collect_metrics`` reads SQL and Redis once per scrape into
a ``MetricsSnapshot``; ``render_metrics`` turns it into the text format without further I/O,
together with the process's own counters and histograms (``shepherd.telemetry``).
"""

from __future__ import annotations

import platform
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

import shepherd
from shepherd.api.context import ApiContext
from shepherd.core.alerting import AlertPhase
from shepherd.core.circuit import Circuit, CircuitState
from shepherd.core.status import TERMINAL, ExecutionStatus
from shepherd.stores.sql.summaries import FinishedSummary
from shepherd.telemetry import Telemetry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ACTIVE_STATUSES = tuple(s for s in ExecutionStatus if s not in TERMINAL)
# From a quick script to a long LLM run: seconds up to the fleet's longest sensible timeout.
DURATION_BUCKETS_S: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


@dataclass(frozen=True, slots=True)
class DurationHistogram:
    """Cumulative counts per upper bound (``DURATION_BUCKETS_S`` then +Inf), and the sum."""

    cumulative: tuple[int, ...]
    sum_s: float


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    executions: Mapping[tuple[str, str], int]  # (agent, status) -> rows
    durations: Mapping[str, DurationHistogram]  # agent -> finished runs
    slots_in_use: Mapping[str, int]
    max_parallel: Mapping[str, int]
    controller_ticks_ms: Mapping[str, int | None]
    agents: Sequence[str] = field(default=())
    # (agent, status, error class or "") -> terminal executions, ever
    finished: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    outbox: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (sink, status) -> rows
    open_alerts: int = 0
    circuits: Mapping[str, Circuit] = field(default_factory=dict)
    finalize_leases: int = 0  # rows some finalizer (or the reaper) is finalizing now
    unreachable: frozenset[str] = frozenset()  # agents the watchdog sees unreachable or fenced


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: MetricsSnapshot) -> None:
        self._s = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self._s
        executions = GaugeMetricFamily(
            "shepherd_executions",
            "Executions in a non-terminal status now, per agent and status.",
            labels=["agent", "status"],
        )
        for agent in s.agents:
            for status in ACTIVE_STATUSES:
                executions.add_metric([agent, status.value], s.executions.get((agent, status), 0))
        yield executions
        finished = CounterMetricFamily(
            "shepherd_executions_finished",
            "Executions that reached a terminal status, per agent, status and error class.",
            labels=["agent", "status", "error_class"],
        )
        for labels, count in sorted(s.finished.items()):
            finished.add_metric(list(labels), count)
        yield finished
        build = GaugeMetricFamily(
            "shepherd_build_info", "Shepherd's version (always 1).", labels=["version", "python"]
        )
        build.add_metric([shepherd.__version__, platform.python_version()], 1)
        yield build
        backlog = GaugeMetricFamily(
            "shepherd_backlog_depth", "Queued executions per agent.", labels=["agent"]
        )
        slots = GaugeMetricFamily(
            "shepherd_slots_in_use", "Capacity slots held per agent.", labels=["agent"]
        )
        capacity = GaugeMetricFamily(
            "shepherd_slots_max", "Capacity slots per agent (max_parallel).", labels=["agent"]
        )
        for agent in s.agents:
            backlog.add_metric([agent], s.executions.get((agent, ExecutionStatus.QUEUED), 0))
            slots.add_metric([agent], s.slots_in_use.get(agent, 0))
            capacity.add_metric([agent], s.max_parallel.get(agent, 0))
        yield from (backlog, slots, capacity)
        yield self._durations()
        yield self._ticks()
        yield from self._deliveries()
        yield from self._circuits()

    def _deliveries(self) -> Iterator[Metric]:
        rows = GaugeMetricFamily("shepherd_outbox_rows",
                                 "Outbound deliveries by sink and status (dead = given up).",
                                 labels=["sink", "status"])
        for (sink, status), count in sorted(self._s.outbox.items()):
            rows.add_metric([sink, status], count)
        yield rows
        yield GaugeMetricFamily("shepherd_alerts_open", "Open alert incidents.",
                                value=self._s.open_alerts)
        yield GaugeMetricFamily("shepherd_finalize_leases_held",
                                "Finalize leases held now (rows being finalized, by any replica).",
                                value=self._s.finalize_leases)

    def _durations(self) -> Metric:
        family = HistogramMetricFamily(
            "shepherd_execution_duration_seconds",
            "Run time of finished executions (start to child exit).",
            labels=["agent"],
        )
        bounds = [*(_bound(b) for b in DURATION_BUCKETS_S), "+Inf"]
        for agent, histogram in sorted(self._s.durations.items()):
            buckets = list(zip(bounds, histogram.cumulative, strict=True))
            family.add_metric([agent], buckets, histogram.sum_s)
        return family

    def _ticks(self) -> Metric:
        family = GaugeMetricFamily(
            "shepherd_controller_last_tick_timestamp_seconds",
            "When each controller last finished a pass (absent before its first).",
            labels=["controller"],
        )
        for name, tick_ms in sorted(self._s.controller_ticks_ms.items()):
            if tick_ms is not None:
                family.add_metric([name], tick_ms / 1000)
        return family

    def _circuits(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "shepherd_circuit_state", "1 for the state each agent's circuit breaker is in.",
            labels=["agent", "state"],
        )
        failures = GaugeMetricFamily(
            "shepherd_circuit_failures", "Consecutive failures counted against each agent.",
            labels=["agent"],
        )
        for agent in self._s.agents:
            circuit = self._s.circuits.get(agent) or Circuit(agent)
            for each in CircuitState:
                state.add_metric([agent, each.value], 1 if circuit.state is each else 0)
            failures.add_metric([agent], circuit.failures)
        yield from (state, failures, self._up())

    def _up(self) -> Metric:
        up = GaugeMetricFamily(
            "shepherd_agent_up",
            "1 when the agent's runtime answers (circuit closed or probing, not unreachable).",
            labels=["agent"],
        )
        for agent in self._s.agents:
            circuit = self._s.circuits.get(agent) or Circuit(agent)
            down = agent in self._s.unreachable or circuit.state in _DOWN_STATES
            up.add_metric([agent], 0 if down else 1)
        return up


_DOWN_STATES = frozenset({CircuitState.OPEN, CircuitState.DORMANT})


def _bound(seconds: float) -> str:
    return f"{seconds:g}"


def render_metrics(snapshot: MetricsSnapshot, telemetry: Telemetry | None = None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    text = generate_latest(registry)
    if telemetry is not None:
        text += generate_latest(telemetry.registry)
    return text


async def collect_metrics(ctx: ApiContext) -> MetricsSnapshot:
    agents = await ctx.db.agents.list()
    names: list[str] = [a.name for a in agents]
    slots: dict[str, int] = {name: await ctx.redis.slots.count(name) for name in names}
    summary = await ctx.db.summaries.finished_summary(DURATION_BUCKETS_S)
    health = await ctx.redis.health.read(names)
    return MetricsSnapshot(
        executions=await ctx.db.executions.count_by_agent_and_status(),
        durations=durations_by_agent(summary),
        slots_in_use=slots,
        max_parallel={a.name: a.max_parallel_tasks for a in agents},
        controller_ticks_ms=ctx.controller_ticks(),
        agents=names,
        finished={(r.agent, r.status, r.error_class or ""): r.count for r in summary},
        outbox=await ctx.db.outbox.counts(),
        open_alerts=len(await ctx.db.alerts.list(AlertPhase.FIRING)),
        circuits=await ctx.redis.circuits.read_many(names),
        finalize_leases=len(await ctx.redis.leases.held(ctx.redis.keys.finalize_lease_pattern())),
        unreachable=frozenset(
            name for name, h in health.items() if h.unreachable_since_ms is not None or h.fenced
        ),
    )


def durations_by_agent(summary: Sequence[FinishedSummary]) -> dict[str, DurationHistogram]:
    """Fold the per-status rows into one run-time histogram per agent (rows that ran only)."""
    folded: dict[str, tuple[list[int], int, int]] = {}
    for row in summary:
        cumulative, ran, run_ms = folded.get(row.agent, ([0] * len(row.cumulative), 0, 0))
        folded[row.agent] = (
            [a + b for a, b in zip(cumulative, row.cumulative, strict=True)],
            ran + row.ran, run_ms + row.run_time_ms,
        )
    return {
        agent: DurationHistogram((*cumulative, ran), run_ms / 1000)
        for agent, (cumulative, ran, run_ms) in folded.items()
    }
