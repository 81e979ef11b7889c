"""The reaper at startup: a configuration whose grace or backstop a healthy finalization could
outlast is refused before anything starts, with one line that names the settings; and the
startup pass ends what it finds before any controller loop has ticked."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shepherd.app.plane import ControlPlane, reaper_config
from shepherd.core.ids import AgentName
from shepherd.core.models import TransitionFields, Trigger
from shepherd.core.status import Cause
from shepherd.core.status import ExecutionStatus as S
from shepherd.errors import ConfigError
from shepherd.settings import Settings
from shepherd.stores.redis.connection import RedisHandle
from tests.fixtures.fleet import free_port


def test_a_grace_shorter_than_a_finalization_may_last_is_refused_with_the_settings_named(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "SHEPHERD_DATA_DIR": str(tmp_path / "data"),
           "SHEPHERD_REAPER_FINALIZE_GRACE_S": "30", "SHEPHERD_FINALIZE_STORE_BUDGET_S": "20"}
    done = subprocess.run([sys.executable, "-m", "shepherd", "serve", "--port", str(free_port())],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: refusing to start, the reaper could end healthy finalizations: "
        "SHEPHERD_REAPER_FINALIZE_GRACE_S / SHEPHERD_FINALIZE_FETCH_BUDGET_S / "
        "SHEPHERD_FINALIZE_STORE_BUDGET_S / SHEPHERD_FINALIZE_ACK_BUDGET_S: the finalize grace "
        "(30 s) must be longer than a finalization may last, its completion budget 45 s "
        "(fetch 15 + store 20 + ack 10): a healthy finalizer would be taken for a dead one"]
    assert not (tmp_path / "data" / "shepherd.db").exists()  # refused before opening anything


def test_a_backstop_below_grace_plus_budget_is_refused_and_a_sound_one_accepted() -> None:
    with pytest.raises(ConfigError, match=r"SHEPHERD_REAPER_MAX_RUNNING_S / "
                       r"SHEPHERD_REAPER_FINALIZE_GRACE_S: max_running_s \(355 s\) must be more "
                       r"than the finalize grace \(300 s\) plus the completion budget 55 s"):
        reaper_config(Settings(reaper_max_running_s=355))
    config = reaper_config(Settings(reaper_max_running_s=356, reaper_finalizer_liveness=False))
    assert (config.policy.max_running_ms, config.policy.finalizer_liveness) == (356_000, False)
    assert reaper_config(Settings()).policy.limit_ms(900) == 1_500_000


async def test_the_startup_pass_ends_what_it_finds_before_any_loop_ticks(
    tmp_path: Path, redis_socket: Path, redis_handle: RedisHandle, sql_url: str,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", redis_url=f"unix://{redis_socket}",
                        database_url=sql_url, reaper_finalize_grace_s=60)
    plane = await ControlPlane.open(settings)
    try:
        db = plane.db
        await db.agents.create(name=AgentName("gone"), url="http://127.0.0.1:9", command=None)
        row = await db.executions.submit(agent=AgentName("gone"), input="", trigger=Trigger.API,
                                         created_by="t")
        now = time.time_ns() // 1_000_000
        assert await db.executions.claim_queued(row.id, now - 120_000, "t")
        assert await db.executions.transition(
            row.id, S.FINALIZING, Cause.CHILD_EXITED, actor="t", now_ms=now - 100_000,
            fields=TransitionFields(finished_at_ms=now - 100_000, exit_code=0))
        await plane.redis.health.fence("gone", now - 50_000)  # declared lost: the result with it
        await plane.recover()
        done = await db.executions.get(row.id)
        assert (done.status, done.error_class) == (S.FAILED, "result_lost")
        assert set(plane.controller_ticks().values()) == {None}  # no loop has run yet
        detail = await plane.redis.reports.detail("reaper")
        assert detail is not None and detail["startup"] is True
        assert detail["counts"]["2"]["result_lost"] == 1
    finally:
        await plane.close()
