"""Recovery from runtime faults on a live ``shepherd up``: real control plane, real runtimes, real
children, real stores. A runtime SIGKILLed with its children and restarted on its port; one
SIGKILLed alone, its children left running, and restarted (it stops them at boot); one that
never comes back; one frozen past the lost threshold and then thawed with its old children still
running; one restarted without its state file; the whole fleet down at once. Each ends with every
execution retried or failed per policy, slots freed, and no child run twice or beside its retry.
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import httpx
import psutil

from tests.faults.recovery import (
    WATCHDOG_ENV,
    ChildLog,
    KilledRuntime,
    agent_port,
    child_log,
    execution,
    executions,
    kill_runtime,
    manifest,
    restarted_runtime,
    retries_of,
    runtime_process,
    slots_in_use,
    submit,
    wait_running,
)
from tests.fixtures.fleet import running_fleet, wait_until

SETTLE_S = 40.0
# For a runtime restarted at once: it is back long before its agent could be declared lost, even
# when a busy machine takes seconds to start it (with 4 s, such runs ended as agent_lost now and
# then under a load of 3+, or beside a second test worker).
RESTARTED_ENV = {**WATCHDOG_ENV, "SHEPHERD_WATCHDOG_AGENT_LOST_AFTER_S": "30"}


def test_a_runtime_killed_with_its_children_and_restarted_on_its_port_retries_each_run_once(
    tmp_path: Path,
) -> None:
    log = child_log(tmp_path)
    with running_fleet(tmp_path, manifest(log, {"a": 2}), RESTARTED_ENV) as fleet:
        ids = submit(fleet, "a", 4)
        wait_running(fleet, ids, log)
        killed = kill_runtime(fleet, "a")
        killed_ns = time.time_ns()
        with restarted_runtime(killed, tmp_path / "restarted.log"):
            wait_until(lambda: all(execution(fleet, i)["status"] == "failed" for i in ids)
                       and all(retries_of(fleet, "a", i) for i in ids), SETTLE_S,
                       "every lost run to fail with a retry queued")
            retries = {i: retries_of(fleet, "a", i) for i in ids}
            wait_running(fleet, [r[0]["id"] for r in retries.values()], log)
            for i in ids:
                lost = execution(fleet, i)
                assert lost["error_class"] == "runtime_restarted"
                [again] = retries[i]
                assert (again["attempt"], again["trigger"]) == (2, "retry")
            children = ChildLog.read(log)
            assert children.started_twice() == []
            assert all(children.starts[r[0]["id"]][0] > killed_ns for r in retries.values())
            assert slots_in_use(fleet, "a") == 4  # the retries'; the lost runs' were freed


def test_a_runtime_killed_without_its_children_stops_them_when_it_returns_and_retries_once(
    tmp_path: Path,
) -> None:
    log = child_log(tmp_path)
    with running_fleet(tmp_path, manifest(log, {"a": 2}), RESTARTED_ENV) as fleet:
        ids = submit(fleet, "a", 2)
        wait_running(fleet, ids, log)
        runtime = runtime_process(fleet, "a")
        orphans = runtime.children(recursive=True)
        killed = KilledRuntime(runtime.cmdline(), runtime.environ(), agent_port(fleet, "a"))
        runtime.send_signal(signal.SIGKILL)  # the runtime only: its children live on
        runtime.wait(timeout=10)
        assert any(child.is_running() for child in orphans)
        with restarted_runtime(killed, tmp_path / "restarted.log"):
            wait_until(lambda: all(execution(fleet, i)["status"] == "failed" for i in ids)
                       and all(retries_of(fleet, "a", i) for i in ids), SETTLE_S,
                       "every run of the killed runtime to fail with a retry queued")
            _, alive = psutil.wait_procs(orphans, timeout=10)
            assert alive == [], f"children of the killed runtime still run: {alive}"
            for i in ids:
                assert len(retries_of(fleet, "a", i)) == 1
            retry_ids = [retries_of(fleet, "a", i)[0]["id"] for i in ids]
            wait_running(fleet, retry_ids, log)
            assert ChildLog.read(log).started_twice() == []


def test_a_runtime_that_never_returns_is_lost_and_its_runs_fail_after_the_threshold(
    tmp_path: Path,
) -> None:
    log = child_log(tmp_path)
    with running_fleet(tmp_path, manifest(log, {"a": 1, "b": 1}), WATCHDOG_ENV) as fleet:
        ids = submit(fleet, "a", 2)
        wait_running(fleet, ids, log)
        kill_runtime(fleet, "a")
        wait_until(lambda: all(execution(fleet, i)["status"] == "failed" for i in ids),
                   SETTLE_S, "the lost agent's runs to fail")
        for i in ids:
            lost = execution(fleet, i)
            assert lost["error_class"] == "agent_lost"
            assert lost["events"][-1]["actor"] == "watchdog"
            assert "declared lost" in lost["events"][-1]["reason"]
        assert slots_in_use(fleet, "a") == 0
        assert [e for e in executions(fleet, "a") if e["retry_of"]] == []  # one attempt only
        with fleet.api() as api:
            status = api.get("/api/watchdog").json()
        assert [a["name"] for a in status["unhealthy_agents"] if a["fenced"]] == ["a"]


def test_a_frozen_runtime_is_lost_then_its_old_children_are_terminated_before_any_retry(
    tmp_path: Path,
) -> None:
    log = child_log(tmp_path)
    with running_fleet(tmp_path, manifest(log, {"a": 2}), WATCHDOG_ENV) as fleet:
        ids = submit(fleet, "a", 2)
        wait_running(fleet, ids, log)
        runtime = runtime_process(fleet, "a")
        runtime.send_signal(signal.SIGSTOP)  # unreachable, its children still running
        try:
            wait_until(lambda: all(execution(fleet, i)["error_class"] == "agent_lost"
                                   for i in ids), SETTLE_S, "the frozen agent to be lost")
            retries = [retries_of(fleet, "a", i) for i in ids]
            assert all(len(r) == 1 and r[0]["status"] == "queued" for r in retries)
            time.sleep(1.0)  # fenced: nothing is dispatched to it meanwhile
            assert all(execution(fleet, r[0]["id"])["status"] == "queued" for r in retries)
        finally:
            runtime.send_signal(signal.SIGCONT)
        retry_ids = [r[0]["id"] for r in retries]
        wait_running(fleet, retry_ids, log)
        children = ChildLog.read(log)
        assert children.started_twice() == []
        for old, new in zip(ids, retry_ids, strict=True):
            assert children.ends[old][0] < children.starts[new][0], "a retry overlapped"
            notes = [e for e in execution(fleet, old)["events"]
                     if e["cause"] == "stray_terminated"]
            assert [(n["actor"], n["to_status"]) for n in notes] == [("watchdog", "failed")]


def test_a_runtime_restarted_without_its_state_has_its_runs_recovered_as_orphans(
    tmp_path: Path,
) -> None:
    log = child_log(tmp_path)
    with running_fleet(tmp_path, manifest(log, {"a": 2}), RESTARTED_ENV) as fleet:
        ids = submit(fleet, "a", 3)
        wait_running(fleet, ids, log)
        killed = kill_runtime(fleet, "a")
        shutil.rmtree(killed.state_dir)  # the host was replaced: nothing of the old state
        with restarted_runtime(killed, tmp_path / "restarted.log"):
            wait_until(lambda: all(execution(fleet, i)["status"] == "failed" for i in ids),
                       SETTLE_S, "the forgotten runs to be recovered")
            for i in ids:
                lost = execution(fleet, i)
                assert lost["error_class"] == "orphaned"
                assert "the agent has no record of it" in lost["error"]
            retry_ids = [retries_of(fleet, "a", i)[0]["id"] for i in ids]
            wait_running(fleet, retry_ids, log)
            assert ChildLog.read(log).started_twice() == []


def test_the_whole_fleet_down_at_once_recovers_nothing_and_says_it_is_systemic(
    tmp_path: Path,
) -> None:
    log = child_log(tmp_path)
    with running_fleet(tmp_path, manifest(log, {"a": 2, "b": 2}), WATCHDOG_ENV) as fleet:
        ids = submit(fleet, "a", 1) + submit(fleet, "b", 1)
        wait_running(fleet, ids, log)
        for agent in ("a", "b"):
            kill_runtime(fleet, agent)

        def systemic() -> bool:
            with fleet.api() as api:
                last = api.get("/api/watchdog").json()["last_cycle"]
            return bool(last and last["systemic"] and last["scope"] == "full")

        wait_until(systemic, SETTLE_S, "a systemic cycle")
        time.sleep(6)  # longer than agent_lost_after_s: still nothing is declared lost
        assert [execution(fleet, i)["status"] for i in ids] == ["running", "running"]
        with fleet.api() as api:
            assert api.get("/api/watchdog").json()["last_cycle"]["systemic"] is True
            assert not any(a["fenced"] for a in api.get("/api/watchdog").json()[
                "unhealthy_agents"])
            metrics = httpx.get(f"{fleet.url}/metrics").text
        assert "shepherd_watchdog_systemic_total" in metrics
        count = [line for line in metrics.splitlines()
                 if line.startswith("shepherd_watchdog_systemic_total")]
        assert float(count[0].split()[-1]) >= 1
