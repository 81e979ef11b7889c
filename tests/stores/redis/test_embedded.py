"""The embedded redis-server: start, persistence, reuse by a second user, last one out."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from shepherd.stores.redis.connection import RedisHandle, connect_redis
from shepherd.stores.redis.embedded import MAX_SOCKET_PATH, socket_path_for

PREFIX = "shepherd:"


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def server_pid(handle: RedisHandle) -> int:
    assert handle.embedded is not None
    pid = handle.embedded.pid()
    assert pid is not None and running(pid)
    return pid


async def test_it_starts_on_a_socket_under_the_data_dir_without_tcp(tmp_path: Path) -> None:
    handle = await connect_redis(None, tmp_path, PREFIX)
    try:
        assert handle.embedded is not None and handle.embedded.started_here
        assert handle.embedded.socket == tmp_path.resolve() / "redis" / "redis.sock"
        config = await handle.client.config_get("port")
        assert config == {"port": "0"}
        assert (await handle.client.config_get("appendonly")) == {"appendonly": "yes"}
    finally:
        await handle.close()


async def test_a_key_persists_across_stop_and_start(tmp_path: Path) -> None:
    handle = await connect_redis(None, tmp_path, PREFIX)
    pid = server_pid(handle)
    await handle.client.set(handle.keys.instance(), "kept")
    await handle.close()
    assert not running(pid)
    again = await connect_redis(None, tmp_path, PREFIX)
    try:
        assert again.embedded is not None and again.embedded.started_here
        assert await again.client.get(again.keys.instance()) == "kept"
    finally:
        await again.close()


async def test_a_second_handle_reuses_the_server_and_the_last_close_stops_it(
    tmp_path: Path,
) -> None:
    first = await connect_redis(None, tmp_path, PREFIX)
    second = await connect_redis(None, tmp_path, PREFIX)
    assert second.embedded is not None and not second.embedded.started_here
    pid = server_pid(first)
    assert server_pid(second) == pid
    await first.close()
    assert running(pid)
    await second.client.set(second.keys.instance(), "still up")
    await second.close()
    assert not running(pid)


async def test_two_handles_starting_at_once_share_one_server(tmp_path: Path) -> None:
    first, second = await asyncio.gather(
        connect_redis(None, tmp_path, PREFIX), connect_redis(None, tmp_path, PREFIX)
    )
    assert first.embedded is not None and second.embedded is not None
    assert [first.embedded.started_here, second.embedded.started_here].count(True) == 1
    pid = server_pid(first)
    assert server_pid(second) == pid
    await asyncio.gather(first.close(), second.close())
    assert not running(pid)


async def test_another_live_shepherd_process_keeps_the_server_up(tmp_path: Path) -> None:
    first = await connect_redis(None, tmp_path, PREFIX)
    assert first.embedded is not None
    pid = server_pid(first)
    holder = subprocess.Popen([
        sys.executable, "-c",
        "import os, sys, redis; c = redis.Redis(unix_socket_path=sys.argv[1], "
        "client_name=f'shepherd-{os.getpid()}'); c.ping(); print('ok', flush=True); "
        "sys.stdin.read()",
        str(first.embedded.socket),
    ], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ok"
        await first.close()
        assert running(pid)
    finally:
        holder.kill()
        holder.wait()
    last = await connect_redis(None, tmp_path, PREFIX)
    assert last.embedded is not None and not last.embedded.started_here
    await last.close()
    assert not running(pid)


async def test_a_stale_socket_is_replaced_by_a_fresh_server(tmp_path: Path) -> None:
    stale = socket_path_for(tmp_path)
    stale.parent.mkdir(parents=True)
    # a socket file left behind by a server that died without cleaning up
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(stale))
    handle = await connect_redis(None, tmp_path, PREFIX)
    try:
        assert handle.embedded is not None and handle.embedded.started_here
        assert await handle.client.ping()
    finally:
        await handle.close()


async def test_a_deep_data_dir_puts_the_socket_in_a_short_directory(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["d" * 20] * 6)
    assert len(str(deep / "redis" / "redis.sock")) > MAX_SOCKET_PATH
    short = socket_path_for(deep)
    assert len(str(short)) <= MAX_SOCKET_PATH
    assert short == socket_path_for(deep)  # stable: a second process finds the same server
    handle = await connect_redis(None, deep, PREFIX)
    try:
        assert handle.embedded is not None and handle.embedded.socket == short
        pid = server_pid(handle)
        assert (deep / "redis" / "redis.pid").exists()
    finally:
        await handle.close()
    assert not running(pid)
