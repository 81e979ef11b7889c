"""``shepherd sentinel`` and ``shepherd agent --sentinel`` as real processes: disabled they read
nothing, enabled they deliver an alert and its recovery to a configured sink, and malformed
settings cost a warning, never the observer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from shepherd.app import main
from tests.fixtures.fleet import wait_until
from tests.fixtures.receiver import Receiver, receiving
from tests.fixtures.runtimes import AGENT_TOKEN
from tests.sentinel.conftest import SpawnMarked

SETTLE_S = 30.0


def fast_env(marker: str, receiver: Receiver, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SHEPHERD_")}
    return {**clean, "SHEPHERD_SENTINEL_ENABLED": "1", "SHEPHERD_SENTINEL_AGE_MIN_S": "0.2",
            "SHEPHERD_SENTINEL_INTERVAL_S": "0.1", "SHEPHERD_SENTINEL_PATTERNS": marker,
            "SHEPHERD_ALERT_WEBHOOK_URL": receiver.url, **extra}


@contextmanager
def running(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "shepherd", *argv], env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=SETTLE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def actions_for(receiver: Receiver, pid: int) -> list[str]:
    return [r.body["action"] for r in receiver.requests
            if r.body["entity"].startswith(f"{pid}@")]


def alert_then_recovery(receiver: Receiver, spawn_marked: SpawnMarked) -> None:
    proc = spawn_marked()
    wait_until(lambda: actions_for(receiver, proc.pid), SETTLE_S, "the alert")
    proc.kill()
    wait_until(lambda: "recovery" in actions_for(receiver, proc.pid), SETTLE_S, "the recovery")
    assert actions_for(receiver, proc.pid) == ["alert", "recovery"]


def test_a_disabled_sentinel_command_says_so_and_reads_no_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    monkeypatch.delenv("SHEPHERD_SENTINEL_ENABLED", raising=False)
    read: list[int] = []
    monkeypatch.setattr(psutil, "process_iter", lambda *a, **k: read.append(1) or iter(()))
    assert main(["sentinel", "--data-dir", str(tmp_path / "s")]) == 0
    assert "sentinel is disabled" in capsys.readouterr().out
    assert read == [] and not (tmp_path / "s").exists()


def test_the_sentinel_command_alerts_and_recovers_through_its_own_outbox_despite_bad_settings(
    tmp_path: Path, spawn_marked: SpawnMarked, marker: str,
) -> None:
    with receiving() as receiver:
        env = fast_env(marker, receiver, SHEPHERD_SENTINEL_COOLDOWN_S="soon")
        log = tmp_path / "sentinel.log"
        with running(["sentinel", "--data-dir", str(tmp_path / "s")], env, log) as process:
            alert_then_recovery(receiver, spawn_marked)
            assert process.poll() is None
        assert process.returncode == 0
    text = log.read_text()
    assert "SHEPHERD_SENTINEL_COOLDOWN_S='soon' is not a number" in text
    assert receiver.url not in text
    assert (tmp_path / "s" / "sentinel.db").is_file()


def test_bad_shared_settings_leave_the_sentinel_logging_instead_of_dying(
    tmp_path: Path, spawn_marked: SpawnMarked, marker: str,
) -> None:
    with receiving() as receiver:
        env = fast_env(marker, receiver, SHEPHERD_PORT="not-a-port")
        log = tmp_path / "sentinel.log"
        with running(["sentinel", "--data-dir", str(tmp_path / "s")], env, log) as process:
            proc = spawn_marked()
            wait_until(lambda: f"{proc.pid}@" in log.read_text(), SETTLE_S, "the alert log line")
            assert process.poll() is None
    text = log.read_text()
    assert "SHEPHERD_PORT" in text and "alerts go to the log only" in text
    assert receiver.requests == []  # the sink came from the settings that did not validate


def test_an_agent_with_the_sentinel_runs_it_beside_its_runtime(
    tmp_path: Path, spawn_marked: SpawnMarked, marker: str,
) -> None:
    with receiving() as receiver:
        env = fast_env(marker, receiver, SHEPHERD_AGENT_TOKEN=AGENT_TOKEN)
        data_dir = tmp_path / "agent"
        argv = ["agent", "--name", "a", "--command", "cat", "--data-dir", str(data_dir),
                "--sentinel"]
        with running(argv, env, tmp_path / "agent.log") as process:
            wait_until(lambda: "listening on" in (tmp_path / "agent.log").read_text(),
                       SETTLE_S, "the runtime")
            alert_then_recovery(receiver, spawn_marked)
        assert process.returncode == 0
    assert (data_dir / "sentinel" / "sentinel.db").is_file()
