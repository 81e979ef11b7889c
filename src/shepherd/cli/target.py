"""Which control plane a client command talks to, and with which token.

In order: ``--url``/``--token``; else ``SHEPHERD_URL``/``SHEPHERD_TOKEN``; else the control plane
that ``shepherd up``/``serve``/``demo`` recorded in an endpoint file (``endpoint.json``) when it
started: the one in ``SHEPHERD_DATA_DIR`` when that is set, else the one in ``./.shepherd`` (a
control plane started from this directory writes it there whatever its data dir, so ``make demo``
and ``up --data-dir X`` are found from the directory they were started in); else
``http://SHEPHERD_HOST:SHEPHERD_PORT`` with the admin token of the data dir.

The endpoint file holds the URL, the path of the admin token file (never the token) and the pid
of the control plane; a file whose process is gone is ignored. The client reads these few
variables itself rather than the server's ``Settings``, so a client command starts fast.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

ADMIN_TOKEN_FILE = "admin.token"
ENDPOINT_FILE = "endpoint.json"
DEFAULT_DATA_DIR = Path(".shepherd")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# Where a control plane listening on every interface is reached from this machine.
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class TargetError(Exception):
    """A client setting that cannot be used; the CLI shows it as one line and exits 2."""


@dataclass(frozen=True)
class Target:
    url: str
    token: str | None


@dataclass(frozen=True)
class Endpoint:
    """What a running control plane recorded about itself for clients on this machine."""

    url: str
    token_path: Path | None
    pid: int


def local_url(host: str, port: int) -> str:
    """The URL a client on this machine uses for a control plane listening on host:port."""
    host = WILDCARD_HOSTS.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def resolve_target(url: str | None, token: str | None) -> Target:
    url = url or os.environ.get("SHEPHERD_URL") or None
    token = token or os.environ.get("SHEPHERD_TOKEN") or None
    if url is None or token is None:
        data_dir = _data_dir()
        endpoint = read_endpoint(data_dir) or read_endpoint(DEFAULT_DATA_DIR)
        if url is None:
            url = endpoint.url if endpoint else local_url(*_host_port())
        if token is None:
            token_path = endpoint.token_path if endpoint and endpoint.token_path else None
            token = _read_token(token_path or data_dir / ADMIN_TOKEN_FILE)
    return Target(url.rstrip("/"), token)


def read_endpoint(data_dir: Path) -> Endpoint | None:
    """The endpoint recorded in ``data_dir``, or None when there is none or its process is gone."""
    try:
        data = json.loads((data_dir / ENDPOINT_FILE).read_text(encoding="utf-8"))
        endpoint = Endpoint(
            url=str(data["url"]),
            token_path=Path(data["token_path"]) if data.get("token_path") else None,
            pid=int(data["pid"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return endpoint if _alive(endpoint.pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, just not ours to signal
    return True


def _data_dir() -> Path:
    value = os.environ.get("SHEPHERD_DATA_DIR")
    return Path(value).expanduser() if value else DEFAULT_DATA_DIR


def _host_port() -> tuple[str, int]:
    host = os.environ.get("SHEPHERD_HOST") or DEFAULT_HOST
    raw = os.environ.get("SHEPHERD_PORT") or str(DEFAULT_PORT)
    if not (raw.isdigit() and 1 <= int(raw) <= 65535):
        raise TargetError(f"SHEPHERD_PORT: expected a port number from 1 to 65535 (got {raw!r})")
    return host, int(raw)


def _read_token(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None
