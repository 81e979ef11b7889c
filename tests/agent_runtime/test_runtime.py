"""The agent runtime as a real process with real children, through the real client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest

from shepherd.agent_client.protocol import EventKind, RunState, StartRequest, TerminateResult
from shepherd.agent_runtime.config import RuntimeConfig
from shepherd.agent_runtime.journal import RecordJournal, read_records
from shepherd.agent_runtime.record import RunRecord
from shepherd.app.runtimes import LocalRuntimes
from shepherd.errors import AgentRejected, ExecutionNotFound
from shepherd.manifest.schema import AgentSpec
from tests.agent_runtime.conftest import Connect
from tests.fixtures.runtimes import AGENT_TOKEN

ECHO = ["python3", "-c", "import sys; d = sys.stdin.read(); print('len', len(d)); print(d[:20])"]


def start(eid: str, text: str = "hello", timeout_s: int = 30) -> StartRequest:
    return StartRequest(execution_id=eid, input=text, timeout_s=timeout_s)


async def test_a_child_runs_with_its_input_and_its_output_is_kept(
    runtime_client: Connect, runtimes: LocalRuntimes
) -> None:
    runtime, client = await runtime_client(ECHO)
    started = await client.start(start("e1"))
    assert started.pid and started.boot_id
    state = await client.get("e1", wait_s=10)
    assert (state.state, state.exit_code, state.error_class) == (RunState.FINISHED, 0, None)
    assert "len 5" in (state.output_tail or "") and "hello" in (state.output_tail or "")
    log = runtime.log_path.parent / "executions" / "e1" / "output.log"
    assert "len 5" in log.read_text()


async def test_a_non_zero_exit_is_reported(runtime_client: Connect) -> None:
    _, client = await runtime_client(["sh", "-c", "cat >/dev/null; echo bad >&2; exit 7"])
    await client.start(start("e1"))
    state = await client.get("e1", wait_s=10)
    assert (state.exit_code, state.error_class) == (7, None)
    assert "bad" in (state.output_tail or "")


async def test_a_timeout_kills_the_whole_group_including_grandchildren(
    runtime_client: Connect,
) -> None:
    _, client = await runtime_client(["sh", "-c", "sleep 30 & echo $!; sleep 30"])
    await client.start(start("e1", timeout_s=1))
    state = await client.get("e1", wait_s=15)
    assert (state.state, state.error_class) == (RunState.FINISHED, "timed_out")
    grandchild = int((state.output_tail or "").split()[0])
    gone = not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie"
    assert gone


async def test_a_child_that_ignores_its_input_reports_its_exit_code_and_the_input_unread(
    runtime_client: Connect,
) -> None:
    _, client = await runtime_client(["true"])
    started = await client.start(start("e1", "x" * (1024 * 1024)))
    assert started.pid
    state = await client.get("e1", wait_s=10)
    assert (state.exit_code, state.error_class, state.input_unread) == (0, None, True)


async def test_terminate_then_already_finished(runtime_client: Connect) -> None:
    _, client = await runtime_client(["sleep", "30"])
    await client.start(start("e1"))
    assert (await client.terminate("e1")).result is TerminateResult.TERMINATED
    state = await client.get("e1")
    assert (state.state, state.error_class) == (RunState.FINISHED, "terminated")
    assert (await client.terminate("e1")).result is TerminateResult.ALREADY_FINISHED
    with pytest.raises(ExecutionNotFound):
        await client.terminate("nope")


async def test_starting_the_same_execution_twice_spawns_one_child(runtime_client: Connect) -> None:
    _, client = await runtime_client(["sh", "-c", "cat >/dev/null; sleep 1"])
    first = await client.start(start("e1"))
    second = await client.start(start("e1"))
    assert (first.pid, first.started_at_ms) == (second.pid, second.started_at_ms)
    registry = await client.list_executions()
    assert [e.execution_id for e in registry.executions] == ["e1"]
    await client.get("e1", wait_s=10)


async def test_results_are_retained_until_acked(runtime_client: Connect) -> None:
    _, client = await runtime_client(["sh", "-c", "cat >/dev/null"])
    await client.start(start("e1"))
    await client.get("e1", wait_s=10)
    assert (await client.get("e1")).state is RunState.FINISHED
    await client.ack("e1")
    with pytest.raises(ExecutionNotFound):
        await client.get("e1")
    with pytest.raises(ExecutionNotFound):
        await client.ack("e1")


async def test_events_come_in_seq_order_and_an_idle_poll_returns_empty(
    runtime_client: Connect,
) -> None:
    _, client = await runtime_client(["sh", "-c", "cat >/dev/null"])
    empty = await client.events(after=0, wait_s=0.2)
    assert (empty.events, empty.last_seq) == ([], 0)
    await client.start(start("e1"))
    await client.get("e1", wait_s=10)
    page = await client.events(after=0, wait_s=1)
    assert [(e.seq, e.kind) for e in page.events] == [(1, EventKind.STARTED),
                                                      (2, EventKind.EXITED)]
    assert page.events[1].exit_code == 0 and page.last_seq == 2
    assert (await client.events(after=2, wait_s=0.2)).events == []


async def test_every_route_but_health_needs_the_token(runtime_client: Connect) -> None:
    runtime, client = await runtime_client(["true"])
    assert (await client.health()).status == "ok"
    async with httpx.AsyncClient(base_url=runtime.url) as http:
        assert (await http.get("/health")).status_code == 200
        for method, path in [("GET", "/v1/executions"), ("GET", "/v1/events"),
                             ("POST", "/v1/executions"), ("DELETE", "/v1/executions/x")]:
            response = await http.request(method, path, headers={"Authorization": "Bearer no"})
            assert response.status_code == 401
            assert response.json()["code"] == "unauthenticated"


async def test_a_malformed_start_is_422_naming_the_field(runtime_client: Connect) -> None:
    runtime, _ = await runtime_client(["true"])
    async with httpx.AsyncClient(base_url=runtime.url) as http:
        response = await http.post("/v1/executions", json={"execution_id": "e1"},
                                    headers={"Authorization": f"Bearer {AGENT_TOKEN}"})
    assert response.status_code == 422
    assert "timeout_s" in response.json()["message"]


async def test_a_command_that_cannot_start_is_a_result_not_a_500(
    runtime_client: Connect,
) -> None:
    _, client = await runtime_client(["/nonexistent/command"])
    await client.start(start("e1"))
    state = await client.get("e1")
    assert (state.state, state.error_class) == (RunState.FINISHED, "spawn_failed")
    assert "nonexistent" in (state.error or "")


async def test_a_burst_of_short_children_leaves_no_zombie(runtime_client: Connect) -> None:
    _, client = await runtime_client(["sh", "-c", "cat >/dev/null"])
    await asyncio.gather(*(client.start(start(f"e{i}")) for i in range(20)))
    for i in range(20):
        assert (await client.get(f"e{i}", wait_s=10)).exit_code == 0
    health = await client.health()
    assert (health.running, health.zombies) == (0, 0)


async def test_a_runtime_killed_mid_run_comes_back_with_a_new_boot_and_settles_its_runs(
    runtime_client: Connect, runtimes: LocalRuntimes
) -> None:
    command = ["sh", "-c", 'read -r d; echo "got $d"; [ "$d" = quick ] || sleep 30']
    runtime, client = await runtime_client(command, name="k")
    await client.start(start("done", "quick\n"))
    assert (await client.get("done", wait_s=10)).exit_code == 0
    first = await client.start(start("running", "slow\n"))
    runtime.process.send_signal(signal.SIGKILL)
    await runtime.process.wait()
    assert first.pid is not None and psutil.pid_exists(first.pid)  # orphaned, still alive
    again = await runtimes.start(AgentSpec(name="k", command=tuple(command)))
    async with httpx.AsyncClient(base_url=again.url,
                                 headers={"Authorization": f"Bearer {AGENT_TOKEN}"}) as http:
        registry = (await http.get("/v1/executions")).json()
        events = (await http.get("/v1/events", params={"after": 0})).json()
        done = (await http.get("/v1/executions/done")).json()
    assert registry["boot_id"] != first.boot_id
    entries = {e["execution_id"]: e for e in registry["executions"]}
    assert (entries["running"]["state"], entries["running"]["error_class"]) == (
        "finished", "runtime_restarted")
    assert (done["state"], done["exit_code"], done["error_class"]) == ("finished", 0, None)
    assert "got quick" in done["output_tail"]
    assert [(e["seq"], e["kind"], e["execution_id"]) for e in events["events"]] == [
        (1, "exited", "running")]
    assert not psutil.pid_exists(first.pid) or psutil.Process(first.pid).status() == "zombie"


async def test_an_unknown_route_body_is_rejected_not_500(runtime_client: Connect) -> None:
    _, client = await runtime_client(["true"])
    with pytest.raises(AgentRejected):
        await client.start(StartRequest.model_construct(execution_id="bad id!", input="",
                                                        timeout_s=1, attempt=1))


async def test_a_graceful_stop_terminates_children_and_records_them(
    runtime_client: Connect, runtimes: LocalRuntimes
) -> None:
    runtime, client = await runtime_client(["sleep", "30"], name="g")
    started = await client.start(start("e1"))
    runtime.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(runtime.process.wait(), 15) == 0
    assert started.pid is not None and not psutil.pid_exists(started.pid)
    [state] = read_records(runtime.log_path.parent / "executions")
    assert (state.execution_id, state.state, state.error_class) == (
        "e1", RunState.FINISHED, "terminated")


async def test_a_runtime_settles_many_survivors_at_once_and_listens_without_waiting_for_them(
    runtimes: LocalRuntimes, tmp_path: Path
) -> None:
    """Survivors whose parent does not reap them (as under a container init that never reaps)
    stay zombies after SIGKILL: a runtime that waited for each (5 s apiece) would not be
    listening within the start timeout. Each survivor's group also holds a grandchild."""
    executions = RuntimeConfig(name="s", data_dir=tmp_path / "runtimes" / "agents" / "s")
    journal = RecordJournal(executions.executions_dir)
    journal.open()
    survivors = []
    for i in range(SURVIVORS):
        leader = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; wait"], text=True,
                                  stdout=subprocess.PIPE, start_new_session=True)
        assert leader.stdout is not None
        grandchild = int(leader.stdout.readline())
        record = RunRecord(f"s{i}", 1, 300, "old-boot", RunState.RUNNING, pid=leader.pid,
                           pid_create_time=psutil.Process(leader.pid).create_time())
        journal.save(record)
        survivors.append((leader, grandchild))
    journal.close()
    try:
        again = await runtimes.start(AgentSpec(name="s", command=("true",)))
        async with httpx.AsyncClient(base_url=again.url,
                                     headers={"Authorization": f"Bearer {AGENT_TOKEN}"}) as http:
            registry = (await http.get("/v1/executions")).json()
            events = (await http.get("/v1/events", params={"after": 0})).json()["events"]
        assert sorted((e["execution_id"], e["state"], e["error_class"])
                      for e in registry["executions"]) == [
            (f"s{i}", "finished", "runtime_restarted") for i in range(SURVIVORS)]
        assert sorted(e["execution_id"] for e in events if e["kind"] == "exited") == [
            f"s{i}" for i in range(SURVIVORS)]
        for leader, grandchild in survivors:
            assert leader.wait(timeout=10) == -signal.SIGKILL
            psutil.wait_procs([p for p in [_process(grandchild)] if p], timeout=10)
            assert _process(grandchild) is None
    finally:
        for leader, _ in survivors:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(leader.pid, signal.SIGKILL)
            leader.wait()


SURVIVORS = 8


def _process(pid: int) -> psutil.Process | None:
    """The live (non-zombie) process ``pid``, if any."""
    try:
        process = psutil.Process(pid)
        return None if process.status() == psutil.STATUS_ZOMBIE else process
    except psutil.NoSuchProcess:
        return None
