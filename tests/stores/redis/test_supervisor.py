"""A dead embedded redis-server comes back: revive restarts it (never beside a live one), the
supervisor says so once each way, and the client carries on against the new server."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import psutil
import pytest

from shepherd.errors import EmbeddedRedisError, RedisStoreError
from shepherd.stores.redis.connection import connect_redis
from shepherd.stores.redis.supervisor import EmbeddedSupervisor

PREFIX = "shepherd:"


def kill(pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    os.kill(pid, sig)
    if sig is signal.SIGKILL:
        psutil.wait_procs([psutil.Process(pid)], timeout=5)


async def test_revive_restarts_a_killed_server_and_last_one_out_still_stops_it(
    tmp_path: Path,
) -> None:
    handle = await connect_redis(None, tmp_path, PREFIX)
    embedded = handle.embedded
    assert embedded is not None
    old = embedded.pid()
    assert old is not None
    kill(old)
    with pytest.raises(RedisStoreError):
        await handle.ping()
    assert await embedded.revive() is True
    new = embedded.pid()
    assert new not in (None, old)
    await handle.ping()  # the same client, on the new server
    assert await embedded.revive() is False  # alive: nothing to do
    await handle.close()
    assert not psutil.pid_exists(new) or psutil.Process(new).status() == psutil.STATUS_ZOMBIE


async def test_revive_never_starts_a_second_server_beside_one_that_lives_but_does_not_answer(
    tmp_path: Path,
) -> None:
    handle = await connect_redis(None, tmp_path, PREFIX)
    assert handle.embedded is not None
    pid = handle.embedded.pid()
    assert pid is not None
    kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(EmbeddedRedisError, match="alive but does not answer"):
            await handle.embedded.revive()
        assert handle.embedded.pid() == pid
    finally:
        kill(pid, signal.SIGCONT)
    await handle.close()


async def test_the_supervisor_brings_the_server_back_and_says_so_once_each_way(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    handle = await connect_redis(None, tmp_path, PREFIX)
    assert handle.embedded is not None
    supervisor = EmbeddedSupervisor(handle.embedded, interval_s=0.05)
    task = asyncio.create_task(supervisor.run())
    try:
        old = handle.embedded.pid()
        assert old is not None
        kill(old)
        for _ in range(200):
            if supervisor.restarts:
                break
            await asyncio.sleep(0.05)
        assert supervisor.restarts == 1
        await handle.ping()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await handle.close()
    said = [r.getMessage() for r in caplog.records if r.name.endswith("supervisor")]
    assert len(said) == 2
    assert "stopped answering" in said[0] and "is back" in said[1]
