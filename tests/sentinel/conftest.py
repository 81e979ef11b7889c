"""Sentinel fixtures: real long-lived processes with a recognisable command line, and a sentinel
on its own SQLite file in the test's directory, moved by a ``ManualClock``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from shepherd.app.sentinel import SentinelOptions, open_sentinel
from shepherd.core.clock import ManualClock
from shepherd.sentinel.config import SentinelConfig
from shepherd.sentinel.service import Sentinel
from shepherd.settings import Settings


@dataclass
class Marked:
    """A real process whose command line carries ``marker``."""

    process: subprocess.Popen[bytes]
    marker: str
    created_ms: int  # read while it lives: half its identity

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def entity(self) -> str:
        return f"{self.pid}@{self.created_ms}"

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


SpawnMarked = Callable[..., Marked]


@pytest.fixture
def marker() -> str:
    """A pattern no other process on the host carries (the test runner itself says pytest)."""
    return f"pytest-fake-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def spawn_marked(marker: str) -> Iterator[SpawnMarked]:
    """``spawn_marked()``: ``sleep 60`` shown as ``<marker> 60``; ``spawn_marked(*args)``: a
    sleeping python whose arguments are ``<marker> *args``. All killed at the end."""
    spawned: list[Marked] = []

    def spawn(*args: str) -> Marked:
        if args:
            argv = [sys.executable, "-c", "import time; time.sleep(60)", marker, *args]
            process = subprocess.Popen(argv)
        else:
            process = subprocess.Popen([marker, "60"], executable=shutil.which("sleep"))
        created_ms = round(psutil.Process(process.pid).create_time() * 1000)
        spawned.append(Marked(process, marker, created_ms))
        return spawned[-1]

    yield spawn
    for item in spawned:
        if item.process.poll() is None:
            item.kill()


def sentinel_config(marker: str, **overrides: object) -> SentinelConfig:
    values: dict[str, object] = {"enabled": True, "age_min_s": 60.0, "patterns": (marker,),
                                 "cooldown_s": 1800.0, "interval_s": 0.1, **overrides}
    return SentinelConfig(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def sentinel_on(
    data_dir: Path, clock: ManualClock, config: SentinelConfig, *,
    settings: Settings | None = None, runtime_dirs: Sequence[Path] = (),
    url: str | None = None, token: str | None = None,
) -> AsyncIterator[Sentinel]:
    options = SentinelOptions(data_dir, tuple(runtime_dirs), url, token)
    sentinel, db = await open_sentinel(options, config, clock,
                                       settings or Settings.model_construct())
    try:
        yield sentinel
    finally:
        await sentinel.close()
        await db.close()
