"""SQLite runs on the event loop's thread: a lock held by another process makes a writer wait
with the loop free, and it fails as SQLite would once the busy timeout has passed."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from shepherd.core.clock import ManualClock
from shepherd.errors import StoreError
from shepherd.stores.sql.database import open_database
from shepherd.stores.sql.inline_sqlite import connector


def _hold_write_lock(db_file: Path) -> sqlite3.Connection:
    """Another process's writer: a connection of its own in the middle of a write."""
    other = sqlite3.connect(db_file, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_a_writer_waits_for_another_process_lock_and_the_loop_keeps_running(
    tmp_path: Path,
) -> None:
    db_file = tmp_path / "shepherd.db"
    db = await open_database(f"sqlite+aiosqlite:///{db_file}", ManualClock())
    try:
        other = _hold_write_lock(db_file)
        ticks = 0
        write = asyncio.create_task(db.agents.create(name="a", url=None, command=("true",)))
        while ticks < 20:  # the loop runs other work while the write waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
            assert not write.done()
        other.rollback()
        other.close()
        created = await asyncio.wait_for(write, timeout=10)
        assert created.name == "a"
        assert [a.name for a in await db.agents.list()] == ["a"]
    finally:
        await db.close()


async def test_a_lock_held_past_the_busy_timeout_fails_as_sqlite_would(tmp_path: Path) -> None:
    db_file = tmp_path / "shepherd.db"
    sqlite3.connect(db_file).close()
    other = _hold_write_lock(db_file)
    conn = await connector(str(db_file), busy_timeout_s=0.2)()
    try:
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            await conn.cursor().execute("BEGIN IMMEDIATE")
    finally:
        other.rollback()
        other.close()
        await conn.close()


async def test_a_sqlite_url_with_options_is_refused_rather_than_half_applied(
    tmp_path: Path,
) -> None:
    with pytest.raises(StoreError, match="takes no options, got mode, uri"):
        await open_database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}?mode=ro&uri=true",
                            ManualClock())
