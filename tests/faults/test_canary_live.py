"""The canary on a live ``shepherd up``: a busy fleet (bursts, early exits, failures, cancels)
with a cycle every second finds nothing; then ``shepherd canary selftest`` provokes each safe
invariant for real and sees it fire and clear."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.fixtures.fleet import LiveFleet, running_fleet, wait_until

FLEET = """
agents:
  - name: echo
    command: ["sh", "-c", "cat >/dev/null; echo ok"]
    max_parallel: 3
    max_backlog_depth: 200
  - name: early
    command: ["sh", "-c", "exit 0"]
    max_parallel: 2
    max_backlog_depth: 200
  - name: flaky
    command: ["sh", "-c", "cat >/dev/null; sleep 0.3; exit $(( $$ % 2 ))"]
    max_parallel: 2
    max_backlog_depth: 200
"""
CANARY = {"SHEPHERD_CANARY_ENABLED": "1", "SHEPHERD_CANARY_INTERVAL_S": "1"}
# The suite drives 12 s; SHEPHERD_CANARY_NOISE_S=600 is the ten-minute run of the closing note.
LOAD_S = float(os.environ.get("SHEPHERD_CANARY_NOISE_S", "12"))


def drive(fleet: LiveFleet) -> int:
    """Bursts of submissions with some cancels for ``LOAD_S`` seconds; the count submitted."""
    submitted = 0
    deadline = time.monotonic() + LOAD_S
    with fleet.api() as api:
        while time.monotonic() < deadline:
            ids = []
            for agent in ("echo", "echo", "early", "flaky"):
                r = api.post("/api/executions", json={"agent": agent, "input": "x"})
                assert r.is_success, r.text
                ids.append(r.json()["id"])
            submitted += len(ids)
            api.post(f"/api/executions/{ids[0]}/cancel")
            time.sleep(0.5)
    return submitted


def settled(fleet: LiveFleet) -> bool:
    with fleet.api() as api:
        rows = api.get("/api/executions", params={"limit": 200}).json()["items"]
    return all(r["status"] not in ("queued", "running", "finalizing") for r in rows)


def test_a_busy_fleet_shows_no_violation_and_the_selftest_proves_each_check(
    tmp_path: Path,
) -> None:
    with running_fleet(tmp_path, FLEET, CANARY) as fleet:
        assert drive(fleet) > 0
        wait_until(lambda: settled(fleet), 60, "the backlog to drain")
        time.sleep(3)  # a few more cycles over the settled fleet
        with fleet.api() as api:
            found = api.get("/api/canary/violations").json()
            status = api.get("/api/canary/status").json()
        assert found == [], json.dumps(found, indent=1)[:3000]
        assert status["enabled"] and status["healthy"], status
        result = subprocess.run(
            [sys.executable, "-m", "shepherd", "canary", "selftest", "--json",
             "--url", fleet.url, "--token", fleet.admin_token],
            capture_output=True, text=True, timeout=120, env={**os.environ},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        rows = {r["id"]: r for r in json.loads(result.stdout)["rows"]}
        for iid in ("S-01", "S-02", "S-03", "S-04", "E-02", "G-02", "G-06"):
            assert (rows[iid]["fired"], rows[iid]["cleared"]) == (True, True), rows[iid]
        with fleet.api() as api:
            assert api.get("/api/canary/violations").json() == []  # the self-test stores none
