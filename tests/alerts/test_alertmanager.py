"""The Alertmanager sink against a real ``alertmanager`` binary (Debian's
``prometheus-alertmanager``, installed by ``.ci/run``): the alert appears in its
``/api/v2/alerts`` with labels from the signal key, and resolves on RECOVERY. Skipped locally
only when the binary is absent; in CI (``CI=true``) its absence fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shepherd.alerts.service import AlertService
from shepherd.alerts.sinks import configured_sinks
from shepherd.controllers.delivery import ConfiguredDestinations
from shepherd.controllers.outbox import OutboxConfig, OutboxSender
from shepherd.core.clock import ManualClock
from shepherd.core.signals import Severity, Signal, SignalKey
from shepherd.stores.sql.database import Database
from tests.fixtures.fleet import free_port

BINARIES = ("alertmanager", "prometheus-alertmanager")
CONFIG = 'route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n'


def find_binary() -> str:
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI") == "true":
        pytest.fail("no alertmanager binary: CI must install prometheus-alertmanager")
    pytest.skip("no alertmanager binary (apt-get install prometheus-alertmanager)")


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = find_binary()
    (tmp_path / "am.yml").write_text(CONFIG)
    url = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address={url.removeprefix('http://')}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("alertmanager did not become ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def active_alerts(url: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{url}/api/v2/alerts", timeout=5).json())


@pytest.mark.parametrize("sql_url", ["sqlite"], indirect=True)
async def test_an_alert_appears_in_alertmanager_and_resolves_on_recovery(
    db: Database, alertmanager: str
) -> None:
    clock = ManualClock(int(time.time() * 1000))  # Alertmanager judges endsAt by its own clock
    service = AlertService(db, clock, configured_sinks(None, alertmanager, None))
    fixed = {s.destination: s.url for s in service.sinks}
    sender = OutboxSender(db, clock, ConfiguredDestinations(db, fixed), owner="t",
                          config=OutboxConfig(send_timeout_s=5, alert_min_interval_ms=0),
                          draw=lambda: 0.0)
    signal = Signal(SignalKey("canary", "S-01", "agent-a"), Severity.CRITICAL, "slots disagree",
                    ("eid 1",), "reclaim")
    try:
        await service.evaluate("canary", [signal])
        await sender.run_once()
        await sender.drain()
        [alert] = active_alerts(alertmanager)
        assert alert["labels"] == {"alertname": "S-01", "source": "canary", "entity": "agent-a",
                                   "severity": "critical", "service": "shepherd"}
        assert alert["status"]["state"] == "active"
        assert alert["annotations"]["summary"] == "slots disagree"
        clock.set(int(time.time() * 1000))  # endsAt = now by Alertmanager's clock too
        await service.evaluate("canary", [])
        await sender.run_once()
        await sender.drain()
    finally:
        await sender.stop()
    assert active_alerts(alertmanager) == []  # resolved: endsAt is now
    delivered = {r.status.value for r in await db.outbox.list(topic="alert")}
    assert delivered == {"delivered"}
