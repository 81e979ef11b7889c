"""The embedded redis-server: start, persistence, reuse by a second process, last one out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

from shepherd.stores.redis.connection import connect_redis
from shepherd.stores.redis.embedded import socket_path_for


async def test_it_starts_persists_and_stops_with_the_last_user(tmp_path: Path) -> None:
    handle = await connect_redis(None, tmp_path, "shepherd:")
    assert handle.embedded is not None and handle.embedded.started_here
    pid = handle.embedded.pid()
    assert pid is not None and psutil.pid_exists(pid)
    await handle.client.set(handle.keys.instance(), "kept")
    await handle.close()
    assert not psutil.pid_exists(pid)
    again = await connect_redis(None, tmp_path, "shepherd:")
    try:
        assert await again.client.get(again.keys.instance()) == "kept"
    finally:
        await again.close()


async def test_a_second_handle_reuses_the_running_server(tmp_path: Path) -> None:
    first = await connect_redis(None, tmp_path, "shepherd:")
    second = await connect_redis(None, tmp_path, "shepherd:")
    assert first.embedded is not None and second.embedded is not None
    assert not second.embedded.started_here
    assert first.embedded.pid() == second.embedded.pid()
    pid = first.embedded.pid()
    await second.close()
    await first.close()
    assert pid is not None and not psutil.pid_exists(pid)


async def test_another_live_process_keeps_the_server_up(tmp_path: Path) -> None:
    first = await connect_redis(None, tmp_path, "shepherd:")
    assert first.embedded is not None
    socket = first.embedded.socket
    holder = subprocess.Popen([
        sys.executable, "-c",
        "import redis, sys, time; c = redis.Redis(unix_socket_path=sys.argv[1], "
        "client_name=f'shepherd-{__import__(\"os\").getpid()}'); c.ping(); print('ok', "
        "flush=True); time.sleep(30)", str(socket),
    ], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ok"
        pid = first.embedded.pid()
        await first.close()
        assert pid is not None and psutil.pid_exists(pid)
    finally:
        holder.kill()
        holder.wait()
    last = await connect_redis(None, tmp_path, "shepherd:")
    await last.close()
    assert not psutil.pid_exists(pid)


async def test_a_deep_data_dir_puts_the_socket_somewhere_short(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["d" * 20] * 6)
    assert len(str(deep / "redis" / "redis.sock")) > 100
    socket = socket_path_for(deep)
    assert len(str(socket)) <= 100 and str(socket).startswith("/tmp/shepherd-")
    handle = await connect_redis(None, deep, "shepherd:")
    try:
        assert await handle.client.ping()
        assert (deep / "redis" / "redis.pid").exists()
    finally:
        await handle.close()
    assert os.path.exists(deep / "redis")
