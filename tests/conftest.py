"""Suite-wide fixtures. Store fixtures live in tests/fixtures/ (real redis-server, real SQL)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psutil
import pytest

pytest_plugins = [
    "tests.fixtures.redis_server",
    "tests.fixtures.sql",
    "tests.fixtures.runtimes",
]


@pytest.fixture(autouse=True)
def no_leftover_children() -> Iterator[None]:
    """Fail a test that leaves child processes of this pytest process behind."""
    me = psutil.Process(os.getpid())
    before = {p.pid for p in me.children(recursive=True)}
    yield
    leftover = [p for p in me.children(recursive=True) if p.pid not in before]
    _, alive = psutil.wait_procs(leftover, timeout=3)
    alive = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    if alive:
        for proc in alive:
            proc.kill()
        pytest.fail(f"test left child processes behind: {[p.pid for p in alive]}")
