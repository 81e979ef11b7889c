"""Under ``shepherd up`` the local runtimes follow the fleet: an applied agent with a command gets
a runtime and runs work, a changed command restarts it, a deleted agent's runtime stops. ``serve``
starts no runtimes and says so; a dry run changes nothing and shows the diff."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fixtures.fleet import LiveFleet, processes_under, running_fleet, wait_until

pytestmark = pytest.mark.slow

FLEET = """
agents:
  - name: first
    command: ["cat"]
"""
WITH_SECOND = FLEET + """
  - name: second
    command: ["sh", "-c", "cat; echo {word}"]
    max_parallel: {slots}
"""


def _apply(api: httpx.Client, text: str, dry_run: bool = False) -> dict[str, object]:
    response = api.post("/api/fleet/apply", content=text, params={"dry_run": dry_run},
                        headers={"Content-Type": "application/yaml"})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _runtime_pids(fleet: LiveFleet, agent: str) -> list[int]:
    return [p.pid for p in processes_under(fleet.data_dir)
            if "shepherd.agent_runtime" in " ".join(p.cmdline()) and f"agents/{agent}" in
            " ".join(p.cmdline())]


def _run(api: httpx.Client, agent: str) -> dict[str, object]:
    eid = api.post("/api/executions", json={"agent": agent, "input": "in "}).json()["id"]
    return wait_until(lambda: (row := api.get(f"/api/executions/{eid}").json())["status"]
                      in ("success", "failed") and row, 30, f"a run on {agent}")


def test_applied_agents_get_runtimes_changed_ones_restart_deleted_ones_stop(
    tmp_path: Path,
) -> None:
    with running_fleet(tmp_path, FLEET) as fleet, fleet.api() as api:
        body = _apply(api, WITH_SECOND.format(word="one", slots=1))
        assert body["runtimes"]["started"] == ["second"]  # type: ignore[index]
        row = _run(api, "second")
        assert row["status"] == "success" and "one" in str(row["output_tail"])
        [before] = _runtime_pids(fleet, "second")

        body = _apply(api, WITH_SECOND.format(word="two", slots=1))
        assert body["runtimes"]["restarted"] == ["second"]  # type: ignore[index]
        assert "two" in str(_run(api, "second")["output_tail"])
        [after] = _runtime_pids(fleet, "second")
        assert after != before

        body = _apply(api, WITH_SECOND.format(word="two", slots=3))  # no runtime change
        assert body["runtimes"]["restarted"] == []  # type: ignore[index]
        assert api.delete("/api/agents/second").status_code == 204
        wait_until(lambda: not _runtime_pids(fleet, "second"), 20, "the runtime to stop")
        assert _runtime_pids(fleet, "first")


def test_a_dry_run_shows_the_diff_and_changes_nothing(tmp_path: Path) -> None:
    with running_fleet(tmp_path, FLEET) as fleet, fleet.api() as api:
        changed = tmp_path / "changed.yaml"
        changed.write_text(FLEET.replace('["cat"]', '["cat"]\n    max_parallel: 7')
                           + '  - name: extra\n    url: "http://127.0.0.1:9"\n')
        done = subprocess.run(
            [sys.executable, "-m", "shepherd", "fleet", "apply", str(changed), "--dry-run"],
            cwd=tmp_path, env={k: v for k, v in os.environ.items()
                               if not k.startswith("SHEPHERD_")},
            capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "would change" in done.stdout
        assert "+ agent extra" in done.stdout
        assert "~ agent first" in done.stdout and "max_parallel: 3 -> 7" in done.stdout
        agents = {a["name"]: a for a in api.get("/api/agents").json()}
        assert set(agents) == {"first"} and agents["first"]["max_parallel"] == 3


def test_serve_says_it_starts_no_runtime_for_an_agent_with_a_command(
    tmp_path: Path,
) -> None:
    from tests.fixtures.fleet import FAST_INTERVALS, free_port

    port = free_port()
    env = {**os.environ, **FAST_INTERVALS, "SHEPHERD_DATA_DIR": str(tmp_path / "data"),
           "SHEPHERD_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "shepherd", "serve"], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _get(f"{url}/readyz") == 200, 60, "serve to be ready")
        token = (tmp_path / "data" / "admin.token").read_text().strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as api:
            body = _apply(api, FLEET)
        assert body["runtimes"] is None
        assert any("first" in note and "starts no runtimes" in note
                   for note in body["notes"])  # type: ignore[attr-defined]
    finally:
        process.terminate()
        process.wait(timeout=30)


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0
