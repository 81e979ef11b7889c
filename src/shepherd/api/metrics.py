"""Prometheus ``/metrics``: the fleet as the stores see it, plus what this process counted.

The gauges are read fresh at every scrape, so several control-plane replicas answer the same
numbers and a restart loses nothing: ``collect_metrics`` reads SQL and Redis once per scrape into
a ``MetricsSnapshot``; ``render_metrics`` turns it into the text format without further I/O,
together with the process's own counters and histograms (``shepherd.telemetry``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from shepherd.api.context import ApiContext
from shepherd.core.circuit import Circuit, CircuitState
from shepherd.core.status import ExecutionStatus
from shepherd.telemetry import Telemetry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
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
    circuits: Mapping[str, Circuit] = field(default_factory=dict)


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: MetricsSnapshot) -> None:
        self._s = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self._s
        executions = GaugeMetricFamily(
            "shepherd_executions", "Executions per agent and status.", labels=["agent", "status"]
        )
        for agent in s.agents:
            for status in ExecutionStatus:
                executions.add_metric([agent, status.value], s.executions.get((agent, status), 0))
        yield executions
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
        yield from self._circuits()

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
        yield from (state, failures)


def _bound(seconds: float) -> str:
    return f"{seconds:g}"


def render_metrics(snapshot: MetricsSnapshot, telemetry: Telemetry | None = None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    text = generate_latest(registry)
    if telemetry is not None:
        text += generate_latest(telemetry.registry)
    return text


def histogram_from_durations(durations_s: Sequence[float]) -> DurationHistogram:
    """Bucket raw durations; the store may also hand over pre-bucketed counts instead."""
    cumulative = [sum(1 for d in durations_s if d <= bound) for bound in DURATION_BUCKETS_S]
    return DurationHistogram((*cumulative, len(durations_s)), float(sum(durations_s)))


async def collect_metrics(ctx: ApiContext) -> MetricsSnapshot:
    agents = await ctx.db.agents.list()
    names: list[str] = [a.name for a in agents]
    slots: dict[str, int] = {name: await ctx.redis.slots.count(name) for name in names}
    return MetricsSnapshot(
        executions=await ctx.db.executions.count_by_agent_and_status(),
        durations=await _durations(ctx),
        slots_in_use=slots,
        max_parallel={a.name: a.max_parallel_tasks for a in agents},
        controller_ticks_ms=ctx.controller_ticks(),
        agents=names,
        circuits=await ctx.redis.circuits.read_many(names),
    )


async def _durations(ctx: ApiContext) -> dict[str, DurationHistogram]:
    # Bucketing belongs in SQL (a GROUP BY over finished rows); until the execution repository
    # offers it the family is exported without samples rather than from a partial window, which
    # would make a cumulative histogram go backwards.
    return {}
