"""``shepherd demo`` as a person starts it: no warning on a first start, then a compact summary
line (agents, running, queued, recent outcomes, recoveries) that changes as the fleet works; and
Ctrl-C leaves nothing behind. The summary's wording is checked on its own, without processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shepherd.app.summary import FleetSummary
from shepherd.core.ids import AgentName, ExecutionId
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.stores.sql.feed import StatusChange
from tests.fixtures.fleet import FAST_INTERVALS, free_port, kill_everything, processes_under

SUMMARY = re.compile(r"agents 5 · running \d+ · queued \d+ · last 5 min: .* · recoveries: ")
NOW = 1_800_000_000_000


@pytest.mark.slow
def test_the_demo_starts_without_a_warning_and_shows_a_live_summary(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SHEPHERD_")},
           **FAST_INTERVALS, "SHEPHERD_LOG_LEVEL": "INFO"}
    demo = subprocess.Popen(
        [sys.executable, "-m", "shepherd", "demo", "--port", str(free_port())], cwd=tmp_path,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 90
        summaries: list[str] = []
        while time.monotonic() < deadline and len(summaries) < 2:
            line = demo.stdout.readline()
            if not line:
                break
            seen.append(line)
            if SUMMARY.search(line):
                summaries.append(line)
        assert len(summaries) == 2, "".join(seen)
        assert not [line for line in seen if "WARNING" in line or "Traceback" in line], seen
    finally:
        demo.send_signal(signal.SIGINT)
        demo.communicate(timeout=60)
        leftover = processes_under(tmp_path / ".shepherd" / "demo")
        kill_everything(tmp_path / ".shepherd" / "demo")
    assert demo.returncode == 0 and leftover == []


def _t(event_id: int, to: ExecutionStatus, cause: Cause, error_class: str | None = None,
       exit_code: int | None = None) -> StatusChange:
    return StatusChange(event_id, ExecutionId(f"e{event_id}"), AgentName("a"), to, cause,
                            error_class, exit_code, NOW)


def test_the_summary_counts_outcomes_by_what_ended_them_and_recoveries_by_kind() -> None:
    summary = FleetSummary(agents=3, running=2, queued=7)
    summary.observe([
        _t(1, ExecutionStatus.SUCCESS, Cause.FINALIZED, exit_code=0),
        _t(2, ExecutionStatus.SUCCESS, Cause.FINALIZED, exit_code=0),
        _t(3, ExecutionStatus.FAILED, Cause.FINALIZED, "exit_code", 2),
        _t(4, ExecutionStatus.FAILED, Cause.FINALIZED, "child_exited_early"),
        _t(5, ExecutionStatus.QUEUED, Cause.RETRY),
        _t(6, ExecutionStatus.FAILED, Cause.ORPHANED),
    ])
    assert summary.cursor == 6
    assert summary.render(NOW) == (
        "agents 3 · running 2 · queued 7 · last 5 min: 2 success, 3 failed "
        "(exit 2 x1, child_exited_early x1, orphaned x1) · recoveries: 1 retried, "
        "1 orphans settled"
    )


def test_outcomes_older_than_five_minutes_leave_the_summary() -> None:
    summary = FleetSummary()
    summary.observe([_t(1, ExecutionStatus.SUCCESS, Cause.FINALIZED)])
    assert "1 success" in summary.render(NOW + 60_000)
    assert "nothing finished" in summary.render(NOW + 6 * 60_000)
