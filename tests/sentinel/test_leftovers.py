"""What finished executions leave behind, seen by a sentinel reading a real runtime's records:
a grandchild that escaped the group (reported by the runtime as a leftover), and a grandchild
still in the group of a child whose runtime was SIGKILLed. Both alert once old enough, stay
watched after the runtime forgot the run, and recover once when they die."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil

from shepherd.core.alerting import AlertAction
from shepherd.core.clock import ManualClock
from shepherd.sentinel.service import SentinelReport
from tests.fixtures.processes import gone, kill_processes_of
from tests.fixtures.runtimes import AGENT_TOKEN, StartRuntime
from tests.sentinel.conftest import sentinel_config, sentinel_on

A = AlertAction
# Starts sleep in a new session, still holding the output, and exits: the runtime reports it.
ESCAPING = ["python3", "-c", "import subprocess; "
            "subprocess.Popen(['sleep', '120'], start_new_session=True)"]
# A child that waits on a grandchild in its own process group.
WAITING = ["sh", "-c", "sleep 120 & wait"]
NO_PATTERN = "no-process-has-this-on-its-command-line"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {AGENT_TOKEN}"},
                             timeout=30)


async def start(http: httpx.AsyncClient, eid: str) -> dict[str, Any]:
    response = await http.post("/v1/executions",
                               json={"execution_id": eid, "input": "", "timeout_s": 300})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def actions(report: SentinelReport) -> list[tuple[str, AlertAction]]:
    return [(d.key.entity, d.action) for d in report.decisions]


def entity(pid: int) -> tuple[str, int]:
    created_ms = round(psutil.Process(pid).create_time() * 1000)
    return f"{pid}@{created_ms}", created_ms


async def test_a_grandchild_that_escaped_a_finished_execution_is_reported_until_it_dies(
    tmp_path: Path, start_runtime: StartRuntime,
) -> None:
    runtime = await start_runtime("escaper", ESCAPING)
    runtime_dir = tmp_path / "runtimes" / "agents" / "escaper"
    eid = unique("sentinel-escape")
    try:
        async with client(runtime.url) as http:
            await start(http, eid)
            state = (await http.get(f"/v1/executions/{eid}?wait=10")).json()
            assert state["state"] == "finished"
            [reported] = state["leftovers"]
            leftover, created_ms = entity(reported["pid"])
            clock = ManualClock(created_ms + 61_000)
            async with sentinel_on(tmp_path / "sentinel", clock, sentinel_config(NO_PATTERN),
                                   runtime_dirs=[runtime_dir]) as sentinel:
                report = await sentinel.run_once()
                assert actions(report) == [(leftover, A.ALERT)]
                [signal] = [s.signal for s in report.signals if s.active]
                assert f"left by finished execution {eid}" in signal.summary
                assert any("escaped its process group" in row for row in signal.forensics)
                # The control plane stores the result and acks: the runtime forgets the run.
                assert (await http.delete(f"/v1/executions/{eid}")).status_code == 204
                clock.advance(60)
                assert actions(await sentinel.run_once()) == []
                assert (await sentinel.run_once()).active == [leftover]
                assert kill_processes_of(eid) == [reported["pid"]]
                await wait_gone(reported["pid"])
                clock.advance(60)
                assert actions(await sentinel.run_once()) == [(leftover, A.RECOVERY)]
                assert actions(await sentinel.run_once()) == []
                assert (await sentinel.run_once()).tracked == 0  # nothing of it is alive
    finally:
        kill_processes_of(eid)


async def test_a_grandchild_left_in_the_group_when_the_runtime_was_killed_is_reported(
    tmp_path: Path, start_runtime: StartRuntime,
) -> None:
    runtime = await start_runtime("waiter", WAITING)
    runtime_dir = tmp_path / "runtimes" / "agents" / "waiter"
    eid = unique("sentinel-group")
    try:
        async with client(runtime.url) as http:
            child_pid = (await start(http, eid))["pid"]
        grandchild = await wait_for_child_of(child_pid)
        clock = ManualClock(round(psutil.Process(grandchild).create_time() * 1000) + 61_000)
        async with sentinel_on(tmp_path / "sentinel", clock, sentinel_config(NO_PATTERN),
                               runtime_dirs=[runtime_dir]) as sentinel:
            running = await sentinel.run_once()
            assert running.watched == [] and running.tracked == 1  # a live run: not ours
            runtime.process.kill()  # the runtime dies; its records say "running"
            await runtime.process.wait()
            psutil.Process(child_pid).kill()  # ... and the child ends without it
            await wait_gone(child_pid)
            leftover, _ = entity(grandchild)
            report = await sentinel.run_once()
            assert actions(report) == [(leftover, A.ALERT)]
            [signal] = [s.signal for s in report.signals]
            assert any("still in its process group" in row for row in signal.forensics)
            assert any(f"child pid {child_pid}" in row for row in signal.forensics)
            psutil.Process(grandchild).kill()
            await wait_gone(grandchild)
            clock.advance(30)
            assert actions(await sentinel.run_once()) == [(leftover, A.RECOVERY)]
    finally:
        kill_processes_of(eid)


async def wait_for_child_of(pid: int) -> int:
    for _ in range(200):
        children = psutil.Process(pid).children()
        if children:
            return children[0].pid
        await asyncio.sleep(0.02)
    raise AssertionError(f"process {pid} started no child")


async def wait_gone(pid: int) -> None:
    for _ in range(200):
        if gone(pid):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"process {pid} is still alive")

