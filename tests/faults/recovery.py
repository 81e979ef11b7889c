"""Helpers of the recovery fault tests: a fleet whose children log their starts and ends, runtime
processes found, killed, frozen and restarted on their own port, and reading the fleet's state
through its API.

A child appends ``start <execution id> <ns>`` when it starts and ``end <execution id> <ns>`` when
it ends or is terminated, to one log file; "ran twice" and "a retry overlapped the attempt it
replaces" are read from that log, with every instant from the same host clock. The log lives in
the fleet's data dir, so the children's command lines name it and ``kill_everything`` finds any
child a test leaves behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from tests.fixtures.fleet import LiveFleet, processes_under, wait_until

# Short intervals and thresholds, so a fault resolves in seconds; a 2 s probe timeout keeps a
# runtime slowed by a busy machine from looking unreachable.
WATCHDOG_ENV = {
    "SHEPHERD_WATCHDOG_INTERVAL_S": "1",
    "SHEPHERD_WATCHDOG_AGENT_LOST_AFTER_S": "4",
    "SHEPHERD_WATCHDOG_DISPATCH_GRACE_S": "2",
    "SHEPHERD_WATCHDOG_PROBE_TIMEOUT_S": "2",
    "SHEPHERD_RETRY_BACKOFF_BASE_S": "0.2",
    "SHEPHERD_MONITOR_POLL_WAIT_S": "2",
}


def logging_child(log: Path, sleep_s: int = 60) -> list[str]:
    """A child command that logs its start and its end, even when terminated (the sleep runs in
    the background so the TERM trap fires at once)."""
    script = (
        f'echo "start $SHEPHERD_EXECUTION_ID $(date +%s%N)" >> {log}; '
        f'trap "echo end $SHEPHERD_EXECUTION_ID \\$(date +%s%N) >> {log}; exit 143" TERM; '
        "cat >/dev/null; "
        f"sleep {sleep_s} & wait $!; "
        f'echo "end $SHEPHERD_EXECUTION_ID $(date +%s%N)" >> {log}'
    )
    return ["sh", "-c", script]


def manifest(log: Path, agents: dict[str, int], max_parallel: int = 4) -> str:
    """One agent per name, with its max_attempts."""
    lines = ["agents:"]
    for name, attempts in agents.items():
        lines += [f"  - name: {name}", f"    command: {json.dumps(logging_child(log))}",
                  f"    max_parallel: {max_parallel}", f"    max_attempts: {attempts}"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ChildLog:
    starts: dict[str, list[int]]
    ends: dict[str, list[int]]

    @classmethod
    def read(cls, path: Path) -> ChildLog:
        starts: dict[str, list[int]] = {}
        ends: dict[str, list[int]] = {}
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        for line in text.splitlines():
            kind, eid, ns = line.split()
            (starts if kind == "start" else ends).setdefault(eid, []).append(int(ns))
        return cls(starts, ends)

    def started_twice(self) -> list[str]:
        return [eid for eid, seen in self.starts.items() if len(seen) > 1]


def runtime_process(fleet: LiveFleet, agent: str) -> psutil.Process:
    [found] = [p for p in processes_under(fleet.data_dir)
               if "shepherd.agent_runtime" in " ".join(p.cmdline())
               and p.cmdline()[p.cmdline().index("--name") + 1] == agent]
    return found


def kill_runtime_with_children(process: psutil.Process) -> None:
    # The runtime first: killed after its children, it would live long enough to report their
    # deaths (exit -9) as ordinary exits, which is not the fault being simulated.
    doomed = [process, *process.children(recursive=True)]
    for proc in doomed:
        for kill in (lambda p: os.killpg(p.pid, signal.SIGKILL), lambda p: p.kill()):
            with suppress(ProcessLookupError, PermissionError, psutil.Error):
                kill(proc)
    psutil.wait_procs(doomed, timeout=10)


@dataclass(frozen=True)
class KilledRuntime:
    """What it takes to start a killed runtime again as it was."""

    cmdline: list[str]
    env: dict[str, str]
    port: int

    @property
    def state_dir(self) -> Path:
        return Path(self.cmdline[self.cmdline.index("--data-dir") + 1]) / "executions"


def kill_runtime(fleet: LiveFleet, agent: str) -> KilledRuntime:
    """SIGKILL the agent's runtime, then its children."""
    runtime = runtime_process(fleet, agent)
    killed = KilledRuntime(runtime.cmdline(), runtime.environ(), agent_port(fleet, agent))
    kill_runtime_with_children(runtime)
    return killed


@contextmanager
def restarted_runtime(killed: KilledRuntime, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A runtime started again with the same command line and environment, on its port; on exit
    it is stopped as ``shepherd up`` stops one (SIGTERM: it terminates its children)."""
    argv, env = list(killed.cmdline), killed.env
    argv[argv.index("--port") + 1] = str(killed.port)
    with log_path.open("ab") as log:
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log,
                                   start_new_session=True)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            kill_runtime_with_children(psutil.Process(process.pid))
            process.wait()


def agent_port(fleet: LiveFleet, agent: str) -> int:
    with fleet.api() as api:
        url = api.get(f"/api/agents/{agent}").json()["url"]
    return int(url.rsplit(":", 1)[1])


def submit(fleet: LiveFleet, agent: str, n: int) -> list[str]:
    with fleet.api() as api:
        return [api.post("/api/executions", json={"agent": agent, "input": str(i)}).json()["id"]
                for i in range(n)]


def executions(fleet: LiveFleet, agent: str) -> list[dict[str, Any]]:
    with fleet.api() as api:
        items: list[dict[str, Any]] = api.get("/api/executions", params={
            "agent": agent, "limit": 500}).json()["items"]
    return items


def execution(fleet: LiveFleet, execution_id: str) -> dict[str, Any]:
    with fleet.api() as api:
        found: dict[str, Any] = api.get(f"/api/executions/{execution_id}").json()
    return found


def slots_in_use(fleet: LiveFleet, agent: str) -> int:
    with fleet.api() as api:
        return int(api.get(f"/api/agents/{agent}").json()["slots_in_use"])


def wait_running(fleet: LiveFleet, ids: list[str], log: Path) -> None:
    """Until every one of ``ids`` runs and its child has logged its start."""
    wait_until(lambda: all(execution(fleet, i)["status"] == "running" for i in ids)
               and set(ids) <= set(ChildLog.read(log).starts), 30, "the executions to run")


def retries_of(fleet: LiveFleet, agent: str, execution_id: str) -> list[dict[str, Any]]:
    return [e for e in executions(fleet, agent) if e["retry_of"] == execution_id]


def child_log(tmp: Path) -> Path:
    """Where the children of a fleet started in ``tmp`` log (inside its data dir)."""
    return tmp / "data" / "children.log"
