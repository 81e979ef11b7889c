"""``shepherd up`` SIGKILLed with runs in flight, then started again on the same data dir: it adopts
the runtimes the first one left (they outlive a control-plane crash by design), so the runs finish
``success``, each exactly once, no slot stays held, and no runtime is left orphaned. A recorded
runtime that no longer matches the manifest is stopped and replaced, never left running beside
the new one."""

from __future__ import annotations

import json
from pathlib import Path

import psutil

from tests.fixtures.fleet import (
    LiveFleet,
    kill_everything,
    processes_under,
    settle_and_stop,
    start_up,
    stop_up,
    wait_until,
)

RUNS = 4
TERMINAL = {"success", "failed", "cancelled", "skipped"}


def _manifest(marks: Path, word: str = "done") -> str:
    # Long enough to be still running when the second control plane has started.
    script = f'cat >/dev/null; sleep 8; echo "$SHEPHERD_EXECUTION_ID" >> {marks}; echo {word}'
    return f"""
agents:
  - name: work
    command: ["sh", "-c", {json.dumps(script)}]
    max_parallel: {RUNS}
    timeout_s: 120
"""


def _runtimes(fleet: LiveFleet) -> list[psutil.Process]:
    return [p for p in processes_under(fleet.data_dir)
            if "shepherd.agent_runtime" in " ".join(p.cmdline())]


def _submit_and_wait_running(fleet: LiveFleet) -> list[str]:
    with fleet.api() as api:
        ids = [api.post("/api/executions", json={"agent": "work", "input": f"job {i}"}).json()["id"]
               for i in range(RUNS)]
        wait_until(lambda: all(api.get(f"/api/executions/{e}").json()["started_at_ms"]
                               for e in ids), 30, "every run to start")
    return ids


def test_a_restarted_up_adopts_its_runtimes_and_every_run_finishes_once(tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    fleet = start_up(tmp_path, _manifest(marks))
    try:
        ids = _submit_and_wait_running(fleet)
        [runtime] = _runtimes(fleet)
        fleet.kill()
        fleet.restart()
        with fleet.api() as api:
            rows = wait_until(lambda: [r for r in (api.get(f"/api/executions/{e}").json()
                                                   for e in ids) if r["status"] in TERMINAL]
                              if all(api.get(f"/api/executions/{e}").json()["status"] in TERMINAL
                                     for e in ids) else None, 60, "every run to end")
        assert [r["status"] for r in rows] == ["success"] * RUNS, rows
        for row in rows:
            terminal_events = [e for e in row["events"] if e["to_status"] in TERMINAL]
            assert len(terminal_events) == 1, row["events"]
        assert sorted(marks.read_text().split()) == sorted(ids)  # each child ran exactly once
        assert [p.pid for p in _runtimes(fleet)] == [runtime.pid]  # adopted, not replaced
        settle_and_stop(fleet)
    finally:
        stop_up(fleet)
        kill_everything(fleet.data_dir)


def test_a_recorded_runtime_that_no_longer_matches_is_stopped_and_replaced(
    tmp_path: Path,
) -> None:
    marks = tmp_path / "marks.txt"
    fleet = start_up(tmp_path, _manifest(marks))
    try:
        [old] = _runtimes(fleet)
        fleet.kill()
        fleet.manifest.write_text(_manifest(marks, word="changed"))
        fleet.restart()
        [new] = _runtimes(fleet)
        assert new.pid != old.pid
        assert not old.is_running()
        settle_and_stop(fleet)
    finally:
        stop_up(fleet)
        kill_everything(fleet.data_dir)
