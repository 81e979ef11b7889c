"""Children that misbehave under a real ``shepherd up``: a daemon that escapes its process group
and keeps the output open, and a child that dumps its environment.

The escaped daemon must not hold its run open nor its slot: the run ends ``success`` at the
child's exit, with the daemon reported as a leftover (the runtime neither waits for it nor kills
it: it left the group the runtime answers for; this test's cleanup kills it). The environment
dump must show no Shepherd secret anywhere: not in the stored output, not in the API's answers,
not in the runtimes' logs.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from shepherd.app.plane import AGENT_TOKEN_FILE
from tests.fixtures.fleet import LiveFleet, running_fleet, wait_until
from tests.fixtures.processes import gone, kill_processes_of

TERMINAL = {"success", "failed", "cancelled", "skipped"}
# Generous for a loaded CI machine; the runs themselves take milliseconds. The timeout of the
# agent (300 s) is what the run would have waited before the fix.
SETTLE_S = 30.0

DAEMON_FLEET = """
agents:
  - name: daemon
    # A daemon in a new session that keeps the output open (see ESCAPE below).
    command: [sh, -c, 'cat >/dev/null; python3 -c "$ESCAPE"; echo started']
    env:
      ESCAPE: "import subprocess; subprocess.Popen(['sleep', '300'], start_new_session=True)"
    max_parallel: 1
    timeout_s: 300
"""

ENV_FLEET = """
agents:
  - name: envdump
    command: ["sh", "-c", "cat >/dev/null; env"]
    env: {GREETING: hello-from-the-manifest}
  - name: other
    command: ["sh", "-c", "cat >/dev/null; env"]
    env: {OTHER_ONLY: belongs-to-the-other-agent}
"""


def submit(fleet: LiveFleet, agent: str, text: str = "in") -> str:
    with fleet.api() as api:
        response = api.post("/api/executions", json={"agent": agent, "input": text})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def settled(fleet: LiveFleet, execution_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        with fleet.api() as api:
            row: dict[str, Any] = api.get(f"/api/executions/{execution_id}").json()
        return row if row["status"] in TERMINAL else None

    return wait_until(probe, SETTLE_S, f"execution {execution_id} to end")


def test_an_escaped_daemon_neither_holds_its_run_nor_its_slot_and_is_reported(
    tmp_path: Path,
) -> None:
    ids: list[str] = []
    with running_fleet(tmp_path, DAEMON_FLEET) as fleet:
        try:
            # One slot: the second run starts only once the first has freed it.
            ids = [submit(fleet, "daemon"), submit(fleet, "daemon")]
            rows = [settled(fleet, eid) for eid in ids]
            for row in rows:
                assert (row["status"], row["exit_code"], row["error_class"]) == (
                    "success", 0, None)
                assert row["input_unread"] is False
                assert [x["name"] for x in row["leftovers"]] == ["sleep"]
                assert row["output_tail"].strip() == "started"
            daemons = [row["leftovers"][0]["pid"] for row in rows]
            assert not any(gone(pid) for pid in daemons)  # reported, not killed
            with fleet.api() as api:
                agent = api.get("/api/agents/daemon").json()
            assert (agent["slots_in_use"], agent["backlog"]) == (0, 0)
            shown = subprocess.run(
                [sys.executable, "-m", "shepherd", "executions", "show", ids[0]],
                env=fleet.env, capture_output=True, text=True, timeout=60,
            )
            assert shown.returncode == 0, shown.stderr
            assert f"{daemons[0]} (sleep)" in shown.stdout and "input_unread" in shown.stdout
        finally:
            killed = [pid for eid in ids for pid in kill_processes_of(eid)]
    assert sorted(killed) == sorted(daemons)


def test_a_child_that_dumps_its_environment_leaks_no_shepherd_secret(
    tmp_path: Path, redis_socket: Path
) -> None:
    marker = uuid.uuid4().hex
    db_dir = tmp_path / f"db-{marker}"
    db_dir.mkdir()
    secrets = {
        "SHEPHERD_AGENT_TOKEN": f"agent-token-{marker}",
        "SHEPHERD_DATABASE_URL": f"sqlite+aiosqlite:///{db_dir}/shepherd.db",
        "SHEPHERD_REDIS_URL": f"unix://{redis_socket}",
        "SHEPHERD_REDIS_PREFIX": f"t{marker[:8]}:",
    }
    with running_fleet(tmp_path, ENV_FLEET, env=secrets) as fleet:
        ids = [submit(fleet, "envdump"), submit(fleet, "other")]
        rows = [settled(fleet, eid) for eid in ids]
        with fleet.api() as api:
            answers = [api.get(f"/api/executions/{eid}").text for eid in ids]
            answers += [api.get("/api/executions").text, api.get("/api/agents").text]
        logs = [p.read_text(errors="replace")
                for p in (fleet.data_dir / "agents").glob("*/runtime.log")]
    dump = rows[0]["output_tail"]
    seen = dict(line.split("=", 1) for line in dump.splitlines() if "=" in line)
    assert rows[0]["status"] == "success"
    assert seen["GREETING"] == "hello-from-the-manifest"
    assert (seen["SHEPHERD_EXECUTION_ID"], seen["SHEPHERD_ATTEMPT"], seen["SHEPHERD_AGENT"]) == (
        ids[0], "1", "envdump")
    assert "OTHER_ONLY" not in seen  # another agent's env stays with that agent
    assert "belongs-to-the-other-agent" in rows[1]["output_tail"]
    assert sorted(n for n in seen if n.startswith("SHEPHERD_")) == [
        "SHEPHERD_AGENT", "SHEPHERD_ATTEMPT", "SHEPHERD_EXECUTION_ID"]
    for text in (*answers, *logs, *(row["output_tail"] for row in rows)):
        for value in (secrets["SHEPHERD_AGENT_TOKEN"], str(db_dir), str(redis_socket)):
            assert value not in text
    assert logs  # the runtimes did write their logs, and they were searched


def test_the_generated_agent_token_and_the_plane_settings_stay_out_of_a_child(
    tmp_path: Path,
) -> None:
    """Without ``SHEPHERD_AGENT_TOKEN`` set, ``up`` generates the token that opens every
    runtime's API; the fixture sets other settings (data dir, port, intervals)."""
    with running_fleet(tmp_path, ENV_FLEET) as fleet:
        row = settled(fleet, submit(fleet, "envdump"))
        token = (fleet.data_dir / AGENT_TOKEN_FILE).read_text().strip()
    assert row["status"] == "success" and "SHEPHERD_EXECUTION_ID" in row["output_tail"]
    assert token not in row["output_tail"]
    for name in ("SHEPHERD_DATA_DIR", "SHEPHERD_PORT", "SHEPHERD_DISPATCHER_INTERVAL_S"):
        assert name in fleet.env and name not in row["output_tail"]
