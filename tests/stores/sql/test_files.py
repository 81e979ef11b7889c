"""The SQLite store's files are the owner's only (0600, like the tokens), -wal and -shm too."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from shepherd.core.clock import ManualClock
from shepherd.stores.sql.database import open_database


def modes(db_file: Path) -> dict[str, int]:
    found = {}
    for suffix in ("", "-wal", "-shm"):
        path = db_file.with_name(db_file.name + suffix)
        if path.exists():
            found[suffix or "db"] = stat.S_IMODE(path.stat().st_mode)
    return found


async def test_a_new_database_and_its_side_files_are_created_owner_only(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # what a login shell usually has
    try:
        db_file = tmp_path / "shepherd.db"
        db = await open_database(f"sqlite+aiosqlite:///{db_file}", ManualClock())
        try:
            await db.agents.create(name="a", url=None, command=("true",))  # writes the WAL
            assert modes(db_file) == {"db": 0o600, "-wal": 0o600, "-shm": 0o600}
        finally:
            await db.close()
    finally:
        os.umask(old_umask)


async def test_an_existing_world_readable_database_is_narrowed(tmp_path: Path) -> None:
    db_file = tmp_path / "shepherd.db"
    db = await open_database(f"sqlite+aiosqlite:///{db_file}", ManualClock())
    await db.close()
    db_file.chmod(0o644)
    again = await open_database(f"sqlite+aiosqlite:///{db_file}", ManualClock())
    try:
        assert set(modes(db_file).values()) == {0o600}
    finally:
        await again.close()
