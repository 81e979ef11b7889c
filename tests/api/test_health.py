"""``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import platform
from dataclasses import replace
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

import shepherd
from shepherd.api.app import create_api
from shepherd.core.ids import ExecutionId
from shepherd.core.models import TransitionFields
from shepherd.core.status import Cause
from shepherd.core.status import ExecutionStatus as S
from shepherd.stores.redis.connection import handle_for
from shepherd.stores.redis.keys import Keys
from tests.api.conftest import Api
from tests.api.helpers import start_running, submit_on


async def test_liveness_and_readiness_answer_ok_when_both_stores_do(api: Api) -> None:
    async with api.client(None) as client:
        live = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert live.json()["status"] == "ok"
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"sql": "ok", "redis": "ok"}}


async def test_readiness_is_503_when_redis_is_gone(api: Api, tmp_path: Path) -> None:
    nowhere = Redis(unix_socket_path=str(tmp_path / "nobody-listens.sock"))
    app = create_api(replace(api.ctx, redis=handle_for(nowhere, Keys().prefix)))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://shepherd.test"
        ) as client:
            response = await client.get("/readyz")
    finally:
        await nowhere.aclose()
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["sql"] == "ok"
    assert response.json()["checks"]["redis"].startswith("unavailable")


async def scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with api.client(None) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


async def finish(api: Api, execution_id: str, run_s: float, status: S, error: str | None) -> None:
    """What the monitor and finalizer do for a child that ran ``run_s`` seconds."""
    row = await api.db.executions.get(ExecutionId(execution_id))
    started = api.clock.now_ms()
    await api.db.executions.record_start(row.id, pid=1, started_at_ms=started, boot_id="b")
    finished = started + int(run_s * 1000)
    assert await api.db.executions.transition(
        row.id, S.FINALIZING, Cause.CHILD_EXITED, actor="test", now_ms=finished,
        fields=TransitionFields(finished_at_ms=finished, exit_code=0 if error is None else 1),
    )
    assert await api.db.executions.transition(
        row.id, status, Cause.FINALIZED, actor="test", now_ms=finished,
        fields=TransitionFields(error_class=error),
    )


async def test_metrics_report_executions_slots_backlog_and_ticks(api: Api) -> None:
    running = await submit_on(api, "alpha")
    await start_running(api, running.id)
    await submit_on(api, "alpha")
    samples = await scrape(api)
    assert samples[("shepherd_executions", (("agent", "alpha"), ("status", "running")))] == 1
    assert samples[("shepherd_backlog_depth", (("agent", "alpha"),))] == 1
    assert samples[("shepherd_slots_in_use", (("agent", "alpha"),))] == 1
    assert samples[("shepherd_slots_in_use", (("agent", "beta"),))] == 0
    assert samples[
        ("shepherd_controller_last_tick_timestamp_seconds", (("controller", "dispatcher"),))
    ] == 1_700_000_000
    assert ("shepherd_build_info", (("python", platform.python_version()),
                                    ("version", shepherd.__version__))) in samples


async def test_metrics_count_finished_runs_and_bucket_their_run_time(api: Api) -> None:
    for run_s, status, error in ((0.5, S.SUCCESS, None), (20, S.SUCCESS, None),
                                 (2, S.FAILED, "exit_code")):
        row = await submit_on(api, "alpha")
        await start_running(api, row.id)
        await finish(api, row.id, run_s, status, error)
    samples = await scrape(api)
    alpha = (("agent", "alpha"),)
    assert samples[("shepherd_execution_duration_seconds_count", alpha)] == 3
    assert samples[("shepherd_execution_duration_seconds_sum", alpha)] == 22.5
    le = {b: samples[("shepherd_execution_duration_seconds_bucket", (*alpha, ("le", b)))]
          for b in ("1", "5", "30", "+Inf")}
    assert le == {"1": 1, "5": 2, "30": 3, "+Inf": 3}
    finished = "shepherd_executions_finished_total"
    assert samples[(finished, (*alpha, ("error_class", ""), ("status", "success")))] == 2
    assert samples[(finished, (*alpha, ("error_class", "exit_code"), ("status", "failed")))] == 1
    # Terminal totals are counters now; the gauge only holds what is in flight.
    assert not any(name == "shepherd_executions" and ("status", "success") in labels
                   for name, labels in samples)
