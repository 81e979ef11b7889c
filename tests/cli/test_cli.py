"""The CLI against a live control plane (``shepherd up`` as real processes), in-process calls of
``shepherd.app.main`` with the data dir's admin token."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.fleet import LiveFleet


def test_agents_ls_shows_the_fleet(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("agents", "ls", "--json")
    assert code == 0
    assert {a["name"] for a in json.loads(out)} == {"echo", "sad", "sleepy", "ticker"}
    code, out, _ = cli("agents", "ls")
    assert code == 0 and "echo" in out


def test_run_wait_exits_with_the_outcome(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("run", "echo", "hello there", "--wait", "--json")
    row = json.loads(out)
    assert (code, row["status"], row["exit_code"]) == (0, "success", 0)
    assert "echo: hello there" in row["output_tail"]
    code, out, _ = cli("run", "sad", "x", "--wait", "--json")
    assert (code, json.loads(out)["status"]) == (1, "failed")


def test_executions_ls_show_and_a_409_for_cancelling_a_finished_run(cli) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = cli("run", "echo", "one", "--wait", "--json")
    eid = json.loads(out)["id"]
    code, out, _ = cli("executions", "ls", "--agent", "echo", "--json")
    assert code == 0 and eid in {item["id"] for item in json.loads(out)["items"]}
    code, out, _ = cli("executions", "show", eid)
    assert code == 0 and "success" in out and "timeline" in out
    code, _, err = cli("executions", "cancel", eid)
    assert code == 1 and "409" in err and "success" in err
    assert len(err.strip().splitlines()) == 1


def test_cancel_a_running_execution_then_retry_it(cli) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = cli("run", "sleepy", "zz", "--json")
    eid = json.loads(out)["id"]
    code, out, _ = cli("executions", "cancel", eid)
    assert code == 0 and "cancelled" in out
    code, out, _ = cli("executions", "retry", eid, "--json")
    retry = json.loads(out)
    assert code == 0 and retry["retry_of"] == eid and retry["attempt"] == 2
    cli("executions", "cancel", retry["id"])


def test_tokens_are_created_listed_and_revoked(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("token", "create", "ci", "--role", "viewer", "--json")
    created = json.loads(out)
    assert code == 0 and created["token"]
    code, out, _ = cli("token", "ls", "--json")
    assert created["id"] in {t["id"] for t in json.loads(out)}
    code, out, _ = cli("token", "revoke", created["id"])
    assert code == 0
    code, _, err = cli("token", "create", "x", "--role", "root")
    assert code == 2 and "--role" in err


def test_a_bad_manifest_fails_before_sending_naming_the_path(
    cli, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("agents:\n - name: a\n   command: x\n   max_parallel: 0\n")
    code, _, err = cli("fleet", "apply", str(bad))
    assert code == 2
    assert "agents[0].max_parallel" in err and str(bad) in err


def test_fleet_apply_is_idempotent(cli, live: LiveFleet) -> None:  # type: ignore[no-untyped-def]
    manifest = live.data_dir.parent / "fleet.yaml"
    code, out, _ = cli("fleet", "apply", str(manifest), "--json")
    changes = json.loads(out)
    assert code == 0 and changes["agents"]["created"] == [] and changes["agents"]["updated"] == []


def test_an_unreachable_control_plane_is_one_readable_line(cli) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("agents", "ls", "--url", "http://127.0.0.1:9")
    assert code == 1 and "cannot reach the control plane" in err
    assert len(err.strip().splitlines()) == 1


def test_status_reports_ready(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("status", "--json")
    assert code == 0 and json.loads(out)["ready"]["status"] == "ready"


def test_alerts_ls_and_sinks_answer_with_no_sink_configured(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("alerts", "ls", "--json")
    assert code == 0 and json.loads(out)["open"] == [] and json.loads(out)["sinks"] == []
    code, out, _ = cli("alerts", "ls")
    assert code == 0 and "no alert sink configured" in out
    code, out, _ = cli("alerts", "sinks", "--json")
    assert (code, json.loads(out)) == (0, [])


def test_agents_show_their_circuit_and_an_admin_resets_it(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("agents", "ls")
    assert code == 0 and "closed" in out
    code, out, _ = cli("agents", "circuit", "echo", "--json")
    assert code == 0 and json.loads(out)["state"] == "closed"
    code, out, _ = cli("agents", "circuit", "echo")
    assert code == 0 and "state changes" in out
    code, out, _ = cli("agents", "reset-circuit", "echo")
    assert (code, out.strip()) == (0, "circuit of echo: closed")
    code, _, err = cli("agents", "reset-circuit", "nobody")
    assert code == 1 and "404" in err and len(err.strip().splitlines()) == 1
def test_reaper_status_shows_the_startup_pass_and_the_leases_held(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("reaper", "status", "--json")
    found = json.loads(out)
    assert code == 0 and found["last_pass"] is not None  # the startup pass, at least
    assert found["settings"]["finalizer_liveness"] is True
    code, out, _ = cli("reaper", "status")
    assert code == 0 and out.startswith("reaper: last ")
    assert "tier 2 0 deferred" in out and "finalize lease(s) held" in out and "actions" in out


def test_watchdog_status_shows_the_last_cycle(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("watchdog", "status", "--json")
    found = json.loads(out)
    assert code == 0 and found["last_cycle"]["scope"] == "full"  # a full cycle at startup
    assert found["last_cycle"]["systemic"] is False
    code, out, _ = cli("watchdog", "status")
    assert code == 0 and out.startswith("watchdog: last full cycle at ")
    assert "0 orphaned" in out and "actions" in out
