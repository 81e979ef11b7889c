"""A real Prometheus scrapes a real ``shepherd up``: the families parse, counters can be
``rate()``d and the run-time, queue-wait and dispatch-latency histograms answer
``histogram_quantile``.

Prometheus comes from Debian's ``prometheus`` package (``.ci/run`` installs it); without the
binary the test skips locally and fails in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.fleet import LiveFleet, free_port, running_fleet, wait_until

FLEET = """
agents:
  - name: echo
    command: ["sh", "-c", "cat >/dev/null; sleep 0.2"]
    max_parallel: 4
"""
SCRAPE_CONFIG = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: shepherd
    static_configs:
      - targets: ["{target}"]
"""


@pytest.fixture
def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus is not installed: CI must run the scrape test")
        pytest.skip("no prometheus binary (apt-get install prometheus)")
    return found


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[LiveFleet]:
    (tmp_path / "fleet").mkdir()
    with running_fleet(tmp_path / "fleet", FLEET) as live:
        yield live


@pytest.fixture
def prometheus(prometheus_binary: str, fleet: LiveFleet, tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "prometheus.yml"
    config.write_text(SCRAPE_CONFIG.format(target=fleet.url.removeprefix("http://")))
    port = free_port()
    process = subprocess.Popen(
        [prometheus_binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), 30, "prometheus to be ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def query(url: str, promql: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def run_some(fleet: LiveFleet, count: int) -> None:
    with fleet.api() as api:
        for i in range(count):
            assert api.post("/api/executions", json={"agent": "echo", "input": f"{i}"}).is_success


def test_prometheus_scrapes_counters_it_can_rate_and_a_histogram_it_can_query(
    fleet: LiveFleet, prometheus: str
) -> None:
    wait_until(lambda: query(prometheus, 'up{job="shepherd"} == 1'), 30, "a first scrape")
    run_some(fleet, 4)
    wait_until(lambda: query(prometheus, "shepherd_executions_finished_total"), 30,
               "the first finished runs to be scraped")
    run_some(fleet, 8)
    rate = wait_until(
        lambda: [r for r in query(prometheus, "rate(shepherd_executions_finished_total[10s])")
                 if float(r["value"][1]) > 0],
        30, "a positive rate of finished executions",
    )
    assert rate[0]["metric"]["agent"] == "echo" and rate[0]["metric"]["status"] == "success"
    quantile = wait_until(
        lambda: [r for r in query(
            prometheus,
            "histogram_quantile(0.5, sum by (le) "
            "(rate(shepherd_execution_duration_seconds_bucket[10s])))",
        ) if r["value"][1] not in ("NaN", "+Inf")],
        30, "a run-time quantile",
    )
    assert 0 < float(quantile[0]["value"][1]) <= 1
    for family in ("process_resident_memory_bytes", "python_info", "shepherd_build_info",
                   'shepherd_agent_up{agent="echo"} == 1',
                   'shepherd_transitions_total{to="success",cause="finalized"}',
                   'shepherd_dispatch_outcomes_total{outcome="started"}'):
        assert query(prometheus, family), family
    for histogram in ("shepherd_queue_wait_seconds", "shepherd_dispatch_latency_seconds"):
        assert wait_until(lambda h=histogram: [r for r in query(
            prometheus, f"histogram_quantile(0.95, sum by (le) (rate({h}_bucket[10s])))",
        ) if r["value"][1] not in ("NaN", "+Inf")], 30, f"a {histogram} quantile"), histogram
