"""Completion webhooks survive a SIGKILLed control plane, and a hung receiver holds up nobody.

A real ``shepherd up`` with real children; the receivers are local HTTP servers in this process.
Every webhook is delivered at least once with its unchanged idempotency key, no execution is lost
or finalized twice, and one agent's hung receiver never delays another agent's finalization.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.fleet import LiveFleet, running_fleet, wait_until
from tests.fixtures.receiver import Answer, Receiver, receiving

MANIFEST = """
agents:
  - name: a
    command: ["sh", "-c", "cat >/dev/null; echo done"]
    max_parallel: 5
  - name: b
    command: ["sh", "-c", "cat >/dev/null; echo done"]
    max_parallel: 5
"""
ENV = {
    "SHEPHERD_OUTBOX_INTERVAL_S": "0.2",
    "SHEPHERD_OUTBOX_SEND_TIMEOUT_S": "2",
    "SHEPHERD_OUTBOX_RETRY_MAX_S": "1",
}
RUNS = 10
SETTLE_S = 60.0


def hook_up(api: httpx.Client, agent: str, receiver: Receiver) -> None:
    response = api.patch(f"/api/agents/{agent}",
                         json={"completion_webhook_url": f"{receiver.url}/{agent}"})
    assert response.status_code == 200, response.text


def submit(api: httpx.Client, agent: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        response = api.post("/api/executions", json={"agent": agent, "input": f"run {i}"})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def statuses(fleet: LiveFleet, ids: list[str]) -> dict[str, str]:
    with fleet.api() as api:
        return {eid: api.get(f"/api/executions/{eid}").json()["status"] for eid in ids}


def all_succeeded(fleet: LiveFleet, ids: list[str]) -> bool:
    return set(statuses(fleet, ids).values()) == {"success"}


def assert_finalized_once(fleet: LiveFleet, ids: list[str]) -> None:
    with fleet.api() as api:
        for eid in ids:
            events: list[dict[str, Any]] = api.get(f"/api/executions/{eid}").json()["events"]
            terminal = [e for e in events if e["to_status"] in ("success", "failed")]
            assert len(terminal) == 1, (eid, events)


def delivered(fleet: LiveFleet, ids: list[str]) -> bool:
    with fleet.api() as api:
        rows = api.get("/api/outbox", params={"topic": "completion", "limit": 500}).json()
    done = {r["subject"] for r in rows if r["status"] == "delivered"}
    return done >= set(ids)


def test_a_control_plane_killed_mid_webhook_delivers_every_webhook_after_restart(
    tmp_path: Path,
) -> None:
    with receiving() as receiver, running_fleet(tmp_path, MANIFEST, ENV) as fleet:
        receiver.default = Answer(hang=True)
        with fleet.api() as api:
            hook_up(api, "a", receiver)
            ids = submit(api, "a", RUNS)
        wait_until(lambda: all_succeeded(fleet, ids), SETTLE_S, "every run to succeed")
        wait_until(lambda: receiver.hanging() >= 4, SETTLE_S, "webhooks in flight")
        fleet.kill()  # SIGKILL mid-webhook: some requests are in the receiver's hands
        receiver.default = Answer(200)
        receiver.release()
        fleet.restart()
        wait_until(lambda: set(receiver.keys(answered=200)) >= {f"{e}:1" for e in ids},
                   SETTLE_S, "every webhook answered 200")
        assert set(receiver.keys()) == {f"{e}:1" for e in ids}  # same key on every attempt
        wait_until(lambda: delivered(fleet, ids), SETTLE_S, "every delivery recorded")
        assert all_succeeded(fleet, ids)
        assert_finalized_once(fleet, ids)


def test_a_control_plane_killed_after_terminal_before_any_2xx_delivers_after_restart(
    tmp_path: Path,
) -> None:
    with receiving() as receiver, running_fleet(tmp_path, MANIFEST, ENV) as fleet:
        receiver.default = Answer(503)
        with fleet.api() as api:
            hook_up(api, "a", receiver)
            ids = submit(api, "a", RUNS)
        wait_until(lambda: all_succeeded(fleet, ids), SETTLE_S, "every run to succeed")
        wait_until(lambda: len(set(receiver.keys())) >= 3, SETTLE_S, "some failed attempts")
        fleet.kill()  # terminal in SQL, no receiver has said 2xx yet
        assert receiver.keys(answered=200) == []
        receiver.default = Answer(200)
        fleet.restart()
        wait_until(lambda: set(receiver.keys(answered=200)) >= {f"{e}:1" for e in ids},
                   SETTLE_S, "every webhook answered 200")
        assert set(receiver.keys()) == {f"{e}:1" for e in ids}
        wait_until(lambda: delivered(fleet, ids), SETTLE_S, "every delivery recorded")
        assert_finalized_once(fleet, ids)


def test_a_hung_receiver_does_not_delay_another_agents_finalization(tmp_path: Path) -> None:
    # A long send timeout: a's first attempts are still open when b is done, unless something
    # waited on them. The old inline webhook (5 s x 3 tries) would show a retry here.
    env = {**ENV, "SHEPHERD_OUTBOX_SEND_TIMEOUT_S": "30"}
    with receiving() as hung, receiving() as healthy, \
            running_fleet(tmp_path, MANIFEST, env) as fleet:
        hung.default = Answer(hang=True)
        with fleet.api() as api:
            hook_up(api, "a", hung)
            hook_up(api, "b", healthy)
            slow_ids = submit(api, "a", 4)
        wait_until(lambda: hung.hanging() == 4, SETTLE_S, "a's receiver to hang")
        with fleet.api() as api:
            fast_ids = submit(api, "b", 5)
        wait_until(lambda: all_succeeded(fleet, fast_ids), SETTLE_S, "b's runs to succeed")
        wait_until(lambda: set(healthy.keys(answered=200)) == {f"{e}:1" for e in fast_ids},
                   SETTLE_S, "b's webhooks delivered")
        # a's receiver still holds its first attempts, never answered, never retried yet
        assert (hung.hanging(), len(hung.requests)) == (4, 4)
        assert all_succeeded(fleet, slow_ids)  # a's own runs are not held by their webhook
        hung.release()
