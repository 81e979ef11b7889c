"""``shepherd up`` as real processes: start, run an execution to success through the CLI, stop
with Ctrl-C, and leave no process behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

from tests.cli.conftest import FLEET
from tests.fixtures.fleet import kill_everything, processes_under, start_up, stop_up


def test_up_runs_work_and_ctrl_c_leaves_no_process_behind(tmp_path: Path) -> None:
    fleet = start_up(tmp_path, FLEET)
    try:
        runtimes = processes_under(fleet.data_dir)
        assert len(runtimes) >= 3  # three runtimes, plus the embedded redis-server
        done = subprocess.run(
            [sys.executable, "-m", "shepherd", "run", "echo", "from the smoke test", "--wait"],
            env=fleet.env, capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "success" in done.stdout
        started = subprocess.run(
            [sys.executable, "-m", "shepherd", "run", "sleepy", "long", "--json"],
            env=fleet.env, capture_output=True, text=True, timeout=60,
        )
        assert started.returncode == 0, started.stderr
    finally:
        stop_up(fleet)
    assert fleet.process.returncode == 0
    leftover = processes_under(fleet.data_dir)
    _, alive = psutil.wait_procs(leftover, timeout=5)
    kill_everything(fleet.data_dir)
    assert alive == [], [p.info for p in alive]
