"""Process-local Prometheus instruments: counters and histograms of what this process did.

``/metrics`` has two halves. Gauges of the fleet's current state are read fresh from the stores at
every scrape (``api/metrics.py``), so every replica answers the same numbers. Things that happen
(a transition, a watchdog action, a dispatch refusal, a latency) are counted here, by the process
that did them, as Prometheus expects of counters: each replica is scraped on its own and a
restart starts its counters at zero, which ``rate()`` handles.

One ``Telemetry`` is built per control plane in ``app/`` and handed to whatever counts; a component
built without one gets a private instance, so tests never share counters by accident. Instruments
are created on first use and reused by name.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)

# From a sub-millisecond hand-off to a slow runtime: seconds.
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
)


class Telemetry:
    def __init__(self, process_metrics: bool = False) -> None:
        """``process_metrics`` adds the standard ``process_*`` and ``python_*`` families (CPU,
        memory, file descriptors, GC): the control plane's own telemetry has them."""
        self.registry = CollectorRegistry(auto_describe=True)
        self._instruments: dict[str, Counter | Gauge | Histogram] = {}
        if process_metrics:
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        """A counter; ``name`` without the ``_total`` suffix, which the exposition adds."""
        found = self._instruments.get(name)
        if found is None:
            found = Counter(name, documentation, tuple(labels), registry=self.registry)
            self._instruments[name] = found
        assert isinstance(found, Counter), f"{name} is not a counter"
        return found

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        found = self._instruments.get(name)
        if found is None:
            found = Gauge(name, documentation, tuple(labels), registry=self.registry)
            self._instruments[name] = found
        assert isinstance(found, Gauge), f"{name} is not a gauge"
        return found

    def histogram(
        self, name: str, documentation: str, labels: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS_S,
    ) -> Histogram:
        found = self._instruments.get(name)
        if found is None:
            found = Histogram(name, documentation, tuple(labels), registry=self.registry,
                              buckets=tuple(buckets))
            self._instruments[name] = found
        assert isinstance(found, Histogram), f"{name} is not a histogram"
        return found
