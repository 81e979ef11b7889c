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


def child_pids() -> set[int]:
    return {p.pid for p in psutil.Process(os.getpid()).children(recursive=True)}


def kill_new_children(before: set[int], grace_s: float = 3) -> list[int]:
    """Children of this pytest process not in ``before`` still alive after ``grace_s``: killed,
    and their pids returned."""
    me = psutil.Process(os.getpid())
    leftover = [p for p in me.children(recursive=True) if p.pid not in before]
    _, alive = psutil.wait_procs(leftover, timeout=grace_s)
    alive = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    for proc in alive:
        proc.kill()
    return [p.pid for p in alive]


@pytest.fixture(autouse=True)
def no_leftover_children() -> Iterator[None]:
    """Fail a test that leaves child processes of this pytest process behind."""
    before = child_pids()
    yield
    left = kill_new_children(before)
    if left:
        pytest.fail(f"test left child processes behind: {left}")
