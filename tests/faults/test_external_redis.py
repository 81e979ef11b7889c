"""An external Redis (``SHEPHERD_REDIS_URL``) that stops under ``shepherd serve``. It is someone
else's to restart, so the control plane only retries it, quietly: no traceback, a few lines for
the whole outage rather than one per call, ``/readyz`` 503 while it is down and 200 once it is
back, submissions still accepted (queued in SQL), and the queued work runs once it is back, on a
server that lost every key (no persistence)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from tests.fixtures.planes import (
    Plane,
    admin_client,
    assert_planes_settled,
    shared_env,
    start_plane,
    stop_planes,
)
from tests.fixtures.redis_server import redis_server
from tests.fixtures.runtimes import StartRuntime

QUICK = ["sh", "-c", "cat >/dev/null; echo done"]
DOWN_S = 4.0
# The outage's whole log: each part that met the outage may say so once (and once when it is
# back), never a line per call or per tick.
MOST_LINES = 8


async def _statuses(api: httpx.AsyncClient, ids: list[str]) -> set[str]:
    return {(await api.get(f"/api/executions/{eid}")).json()["status"] for eid in ids}


async def _until_success(api: httpx.AsyncClient, ids: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while (seen := await _statuses(api, ids)) != {"success"}:
        assert time.monotonic() < deadline, f"not all success after {timeout_s} s: {seen}"
        await asyncio.sleep(0.1)


def _log_since(plane: Plane, offset: int) -> list[str]:
    return plane.log.read_bytes()[offset:].decode(errors="replace").splitlines()


async def test_an_external_redis_that_stops_is_retried_quietly_and_work_resumes(
    tmp_path: Path, start_runtime: StartRuntime,
) -> None:
    runtime = await start_runtime("worker", QUICK)
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    plane: Plane | None = None
    try:
        with redis_server(redis_dir) as socket:
            env = shared_env(socket, f"sqlite+aiosqlite:///{tmp_path / 'plane.db'}")
            plane = await start_plane(tmp_path, 0, env)
            async with admin_client(plane) as api:
                made = await api.post("/api/agents", json={"name": "worker", "url": runtime.url})
                assert made.status_code == 201, made.text
                first = (await api.post("/api/executions", json={"agent": "worker",
                                                                  "input": "x"})).json()["id"]
                await _until_success(api, [first], 30)
            offset = plane.log.stat().st_size
        # The server is stopped (and its keys gone with it).
        async with admin_client(plane) as api:
            queued = []
            deadline = time.monotonic() + DOWN_S
            while time.monotonic() < deadline:
                assert (await api.get("/readyz")).status_code == 503
                if len(queued) < 3:
                    posted = await api.post("/api/executions", json={"agent": "worker",
                                                                      "input": "y"})
                    assert posted.status_code == 201, posted.text
                    queued.append(posted.json()["id"])
                await asyncio.sleep(0.5)
            assert await _statuses(api, queued) == {"queued"}
        down = _log_since(plane, offset)
        with redis_server(redis_dir):
            async with admin_client(plane) as api:
                deadline = time.monotonic() + 30
                while (await api.get("/readyz")).status_code != 200:
                    assert time.monotonic() < deadline, "/readyz not 200 after Redis came back"
                    await asyncio.sleep(0.2)
                await _until_success(api, [first, *queued], 60)
            await assert_planes_settled(plane, runtimes=(runtime,))
        lines = _log_since(plane, offset)
    finally:
        if plane is not None:
            stop_planes([plane])
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
    assert 1 <= len(down) <= MOST_LINES, "\n".join(down)
    assert any("answer again" in line for line in lines[len(down):]), "\n".join(lines)
