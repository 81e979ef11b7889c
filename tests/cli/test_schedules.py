"""``shepherd schedules`` against a live control plane: add one, find it by name, disable and
enable it, run it now, remove it; and ``agents rm``."""

from __future__ import annotations

import json


def test_a_schedule_is_added_listed_switched_run_and_removed_by_name(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("schedules", "add", "echo", "0 3 * * *", "--input", "from cron",
                       "--name", "nightly", "--json")
    assert code == 0
    created = json.loads(out)
    assert created["enabled"] and created["next_run_at_ms"]

    code, out, _ = cli("schedules", "ls", "--agent", "echo")
    assert code == 0 and created["id"] in out and "nightly" in out

    code, out, _ = cli("schedules", "disable", "nightly")
    assert code == 0 and "disabled" in out
    code, out, _ = cli("schedules", "show", "nightly", "--json")
    assert json.loads(out)["enabled"] is False
    code, out, _ = cli("schedules", "enable", created["id"][:8])
    assert code == 0 and "enabled, next run" in out

    code, out, _ = cli("schedules", "run-now", "nightly", "--json")
    run = json.loads(out)
    assert code == 0 and run["schedule_id"] == created["id"] and run["input"] == "from cron"

    code, out, _ = cli("schedules", "rm", "nightly")
    assert code == 0
    code, _, err = cli("schedules", "show", "nightly")
    assert code == 1 and "no schedule named 'nightly'" in err


def test_a_bad_cron_is_one_line_naming_the_field(cli) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("schedules", "add", "echo", "not a cron")
    assert code == 1 and "body.cron" in err and len(err.strip().splitlines()) == 1


def test_agents_rm_deletes_an_agent(cli, live) -> None:  # type: ignore[no-untyped-def]
    with live.api() as api:
        assert api.post("/api/agents", json={"name": "gone", "url": "http://127.0.0.1:9"}
                        ).status_code == 201
    code, out, _ = cli("agents", "rm", "gone")
    assert code == 0 and "deleted agent gone" in out
    code, out, _ = cli("agents", "ls", "--json")
    assert "gone" not in {a["name"] for a in json.loads(out)}
