"""The forward path: a sentinel sends its signals to a real control plane (``shepherd up``), whose
alert engine opens the incident and closes it when the process dies; a refused token is logged
(without the token) and costs only the forward, never the local decision."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from shepherd.core.alerting import AlertAction
from shepherd.core.clock import ManualClock
from shepherd.core.sentinel import KIND, source_for
from tests.fixtures.fleet import LiveFleet, running_fleet
from tests.sentinel.conftest import SpawnMarked, sentinel_config, sentinel_on

EMPTY_FLEET = "agents: []\n"


def open_incidents(fleet: LiveFleet) -> list[dict[str, Any]]:
    with fleet.api() as api:
        response = api.get("/api/alerts")
    assert response.status_code == 200, response.text
    return [i for i in response.json()["open"] if i["kind"] == KIND]


async def test_signals_forwarded_to_a_control_plane_open_and_close_its_incident(
    tmp_path: Path, spawn_marked: SpawnMarked, marker: str,
) -> None:
    proc = spawn_marked()
    clock = ManualClock(proc.created_ms + 61_000)
    with running_fleet(tmp_path, EMPTY_FLEET) as fleet:
        async with sentinel_on(tmp_path / "sentinel", clock, sentinel_config(marker),
                               url=fleet.url, token=fleet.admin_token) as sentinel:
            report = await sentinel.run_once()
            assert [d.action for d in report.decisions] == [AlertAction.ALERT]
            assert report.forwarded is not None
            assert report.forwarded.decisions == ((KIND, proc.entity, "alert"),)
            [incident] = open_incidents(fleet)
            assert incident["source"] == source_for(socket.gethostname())
            assert incident["entity"] == proc.entity and marker in incident["summary"]
            assert any(row.startswith("CPU time") for row in incident["forensics"])

            clock.advance(100)  # the control plane keeps quiet within the cooldown too
            report = await sentinel.run_once()
            assert report.forwarded is not None and report.forwarded.decisions == ()

            proc.kill()
            report = await sentinel.run_once()
            assert report.forwarded is not None
            assert report.forwarded.decisions == ((KIND, proc.entity, "recovery"),)
            assert open_incidents(fleet) == []


async def test_a_refused_forward_is_logged_without_the_token_and_the_local_decision_stands(
    tmp_path: Path, spawn_marked: SpawnMarked, marker: str, caplog: pytest.LogCaptureFixture,
) -> None:
    proc = spawn_marked()
    clock = ManualClock(proc.created_ms + 61_000)
    wrong = "not-a-token-of-this-plane-0123"
    with running_fleet(tmp_path, EMPTY_FLEET) as fleet, \
            caplog.at_level(logging.WARNING, logger="shepherd.sentinel"):
        async with sentinel_on(tmp_path / "sentinel", clock, sentinel_config(marker),
                               url=fleet.url, token=wrong) as sentinel:
            report = await sentinel.run_once()
        assert [d.action for d in report.decisions] == [AlertAction.ALERT]
        assert report.forwarded is None
        assert open_incidents(fleet) == []
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused == ["sentinel: the control plane refused the signals: HTTP 401 unauthenticated"]
    assert wrong not in caplog.text


async def test_an_unreachable_control_plane_costs_the_forward_only(
    tmp_path: Path, spawn_marked: SpawnMarked, marker: str, caplog: pytest.LogCaptureFixture,
) -> None:
    proc = spawn_marked()
    clock = ManualClock(proc.created_ms + 61_000)
    with caplog.at_level(logging.WARNING, logger="shepherd.sentinel"):
        async with sentinel_on(tmp_path, clock, sentinel_config(marker),
                               url="http://127.0.0.1:1", token="t" * 20) as sentinel:
            report = await sentinel.run_once()
    assert [d.action for d in report.decisions] == [AlertAction.ALERT]
    assert report.forwarded is None
    assert "forwarding to the control plane failed (ConnectError)" in caplog.text
