"""One control plane per data dir and per port, as real processes: a second ``up``/``serve``/
``demo`` on a data dir in use, or on a busy port, exits 2 with one line before it starts anything,
and the first fleet keeps working; ``serve`` replicas on external stores with their own data dirs
run side by side."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fixtures.fleet import (
    FAST_INTERVALS,
    free_port,
    kill_everything,
    processes_under,
    running_fleet,
    wait_until,
)

pytestmark = pytest.mark.slow

FLEET = """
agents:
  - name: echo
    command: ["cat"]
"""


def _shepherd(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shepherd", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", [("up", "fleet.yaml"), ("serve",), ("demo",)])
def test_a_second_control_plane_on_a_data_dir_in_use_exits_2_naming_it_and_the_holder(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    with running_fleet(tmp_path, FLEET) as fleet:
        env = {**fleet.env, "SHEPHERD_PORT": str(free_port())}
        second = _shepherd(*command, "--data-dir", str(fleet.data_dir), env=env, cwd=tmp_path)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert str(fleet.data_dir.resolve()) in lines[0]
        assert f"pid {fleet.process.pid}" in lines[0]
        assert "Traceback" not in second.stdout + second.stderr
        with fleet.api() as api:  # the first fleet still dispatches to its own runtime
            created = api.post("/api/executions", json={"agent": "echo", "input": "still here"})
            eid = created.json()["id"]
            done = wait_until(lambda: api.get(f"/api/executions/{eid}").json()["status"]
                              in ("success", "failed") and api.get(f"/api/executions/{eid}"),
                              30, "the run to finish")
            assert done.json()["status"] == "success"


def test_a_busy_port_exits_2_with_one_line_before_starting_anything(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(FLEET)
    data_dir = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, **FAST_INTERVALS, "SHEPHERD_DATA_DIR": str(data_dir),
               "SHEPHERD_PORT": str(port)}
        try:
            done = _shepherd("up", "fleet.yaml", env=env, cwd=tmp_path)
            assert done.returncode == 2
            assert done.stderr.strip().splitlines() == [
                f"error: port {port} on 127.0.0.1 is already in use; stop what listens there "
                "or choose another with --port or SHEPHERD_PORT"
            ]
            assert processes_under(data_dir) == []  # no redis-server, no runtime
            assert not (data_dir / "redis").exists()
        finally:
            kill_everything(data_dir)


def test_serve_replicas_with_their_own_data_dirs_share_external_stores(
    tmp_path: Path, empty_redis_socket: Path
) -> None:
    shared = {
        **os.environ, **FAST_INTERVALS,
        "SHEPHERD_REDIS_URL": f"unix://{empty_redis_socket}",
        "SHEPHERD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}",
    }
    replicas: list[tuple[subprocess.Popen[str], str]] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            env = {**shared, "SHEPHERD_DATA_DIR": str(tmp_path / name), "SHEPHERD_PORT": str(port)}
            process = subprocess.Popen([sys.executable, "-m", "shepherd", "serve"], env=env,
                                       cwd=tmp_path, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, text=True)
            replicas.append((process, f"http://127.0.0.1:{port}"))
            wait_until(lambda url=f"http://127.0.0.1:{port}": _ready(url), 60, f"replica {name}")
        assert all(process.poll() is None for process, _ in replicas)
    finally:
        for process, _ in replicas:
            process.terminate()
            process.wait(timeout=30)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
