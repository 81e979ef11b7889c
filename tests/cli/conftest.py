"""A live ``shepherd up`` (real processes: control plane, runtimes, children) for CLI tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

FLEET = """
agents:
  - name: echo
    command: ["python3", "-c", "import sys; print('echo:', sys.stdin.read())"]
    max_parallel: 2
  - name: sad
    command: ["sh", "-c", "cat >/dev/null; exit 4"]
  - name: sleepy
    command: ["sh", "-c", "cat >/dev/null; sleep 30"]
"""


@dataclass
class LiveFleet:
    url: str
    data_dir: Path
    process: subprocess.Popen[str]
    env: dict[str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_up(tmp: Path, manifest: str = FLEET) -> LiveFleet:
    fleet = tmp / "fleet.yaml"
    fleet.write_text(manifest)
    port = free_port()
    data_dir = tmp / "data"
    env = {**os.environ, "SHEPHERD_DATA_DIR": str(data_dir), "SHEPHERD_PORT": str(port),
           "SHEPHERD_DISPATCHER_INTERVAL_S": "0.1", "SHEPHERD_FINALIZER_INTERVAL_S": "0.1",
           "SHEPHERD_MONITOR_INTERVAL_S": "0.5", "SHEPHERD_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-m", "shepherd", "up", str(fleet)], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen.append(line)
        if "Shepherd is up" in line or not line:
            break
    if "Shepherd is up" not in "".join(seen):
        process.kill()
        raise AssertionError(f"shepherd up did not start:\n{''.join(seen)}")
    return LiveFleet(f"http://127.0.0.1:{port}", data_dir, process, env)


def stop_up(fleet: LiveFleet) -> None:
    fleet.process.send_signal(signal.SIGINT)
    try:
        fleet.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        fleet.process.kill()
        fleet.process.wait()
        raise


def processes_under(data_dir: Path) -> list[psutil.Process]:
    """Live processes whose command line mentions the data dir (runtimes, redis-server)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(data_dir) in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveFleet]:
    fleet = start_up(tmp_path_factory.mktemp("up"))
    yield fleet
    stop_up(fleet)
