"""Oversized requests against a real control plane (uvicorn in its own process): 200 MB streamed
bodies, with and without a token, are refused early, and the server's memory stays flat however
many arrive (its RSS is measured, not its speed)."""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from tests.fixtures.fleet import LiveFleet, running_fleet

pytestmark = pytest.mark.slow

FLEET = 'agents:\n  - name: echo\n    command: ["cat"]\n'
BODY_BYTES = 200 * 1024 * 1024
CHUNK = b"x" * (1024 * 1024)
# Python keeps freed memory for reuse; growth beyond one buffered body would be a leak.
ALLOWED_GROWTH_BYTES = 48 * 1024 * 1024


def _stream(fleet: LiveFleet, token: str | None) -> tuple[int, int]:
    """POST a chunked 200 MB body; (status, bytes sent before the server answered)."""
    parts = urlsplit(fleet.url)
    head = (f"POST /api/executions HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n")
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    sent = 0
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall((head + "\r\n").encode())
        sock.settimeout(2)
        try:
            while sent < BODY_BYTES and not select.select([sock], [], [], 0)[0]:
                sock.sendall(f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n")
                sent += len(CHUNK)
        except OSError:
            pass  # the server answered and closed: it will not read the rest
        sock.settimeout(10)
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split()[1]), sent


def test_repeated_200_mb_bodies_are_refused_early_and_memory_stays_flat(
    tmp_path: Path,
) -> None:
    env = {"SHEPHERD_MAX_REQUEST_BODY_BYTES": str(4 * 1024 * 1024)}
    with running_fleet(tmp_path, FLEET, env) as fleet:
        server = psutil.Process(fleet.process.pid)
        status, sent = _stream(fleet, None)
        assert status == 401 and sent < BODY_BYTES
        status, sent = _stream(fleet, fleet.admin_token)
        assert status == 413 and sent < BODY_BYTES
        time.sleep(0.5)
        baseline = server.memory_info().rss
        for token in (None, fleet.admin_token) * 3:
            status, _ = _stream(fleet, token)
            assert status in (401, 413)
        time.sleep(0.5)
        growth = server.memory_info().rss - baseline
        assert growth < ALLOWED_GROWTH_BYTES, f"RSS grew by {growth / 2**20:.1f} MiB"
