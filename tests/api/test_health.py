"""``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from shepherd.api.app import create_api
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


async def test_metrics_report_executions_slots_backlog_and_ticks(api: Api) -> None:
    running = await submit_on(api, "alpha")
    await start_running(api, running.id)
    await submit_on(api, "alpha")
    async with api.client(None) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("shepherd_executions", (("agent", "alpha"), ("status", "running")))] == 1
    assert samples[("shepherd_backlog_depth", (("agent", "alpha"),))] == 1
    assert samples[("shepherd_slots_in_use", (("agent", "alpha"),))] == 1
    assert samples[("shepherd_slots_in_use", (("agent", "beta"),))] == 0
    assert samples[
        ("shepherd_controller_last_tick_timestamp_seconds", (("controller", "dispatcher"),))
    ] == 1_700_000_000
    assert "shepherd_execution_duration_seconds" in response.text
