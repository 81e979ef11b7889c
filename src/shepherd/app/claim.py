"""What a control plane claims on this machine before it starts anything: its data dir and its port.

``claimed(settings)`` holds both for the life of the process, and fails with one ``ConfigError``
line (exit 2) before Redis, runtimes or controllers start:

- the data dir, by an exclusive ``flock`` on ``<data_dir>/control-plane.lock`` that names the pid
  holding it. A second ``up``/``serve``/``demo`` on a data dir in use would rewrite the first
  fleet's agent URLs to its own runtimes; it is refused instead. The lock belongs to the open file,
  so it ends with the process however it ends (even SIGKILL), and children never inherit it
  (Python opens files non-inheritable), so runtimes that outlive a crash do not hold it.
- the port, by binding the listening socket here and handing it to uvicorn, so no other process
  can take it between the check and the serving.

Replicas of ``serve`` on external stores each have their own data dir, hence their own lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shepherd.errors import ConfigError

LOCK_FILE = "control-plane.lock"
# Connections waiting to be accepted; uvicorn's own default.
LISTEN_BACKLOG = 2048


@contextmanager
def data_dir_claimed(data_dir: Path) -> Iterator[None]:
    """Hold the data dir for this process, or raise naming the process that holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"data dir {data_dir.resolve()} is in use by pid {_holder(path)} (another "
                "shepherd up, serve or demo); stop it first or give another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or one line saying the port is taken."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"SHEPHERD_HOST: cannot listen on {host!r} ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use; stop what listens there or choose "
                "another with --port or SHEPHERD_PORT"
            ) from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


@contextmanager
def claimed(data_dir: Path, host: str, port: int) -> Iterator[socket.socket]:
    """The data dir, then the port: yields the listening socket; both released on exit."""
    with data_dir_claimed(data_dir):
        sock = bind_listener(host, port)
        try:
            yield sock
        finally:
            with contextlib.suppress(OSError):
                sock.close()
