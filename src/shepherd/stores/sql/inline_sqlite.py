"""SQLite driven on the event loop's own thread, for SQLAlchemy's ``aiosqlite`` dialect.

The stock driver hands every call (cursor, execute, fetch, close, commit) to a thread of its own
and back: two thread switches and an event-loop wake-up each, about ten per transaction. A
control plane's statements are short reads and writes of a local WAL file, cheaper to run than
to hand over, so this driver runs each of them where it is called. It keeps the stock driver's
interface (what the dialect's adapter calls), with one difference that matters:

Waiting for a lock never blocks the loop. The connection's own busy timeout is zero; a statement
that finds the database locked by another process (``SQLITE_BUSY``: ``BEGIN IMMEDIATE`` while
another replica writes) is retried after an ``asyncio.sleep`` that doubles up to 50 ms, until
``busy_timeout_s`` has passed, then fails as the stock driver would. A statement that did not
run for want of the lock changed nothing, so running it again is safe.

What it gives up: a slow statement (an aggregate over a large history) holds the loop while it
runs, where the stock driver held only the one connection that every statement here queues for
anyway.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

# First pause after SQLITE_BUSY, and the longest: a writer holds the lock for milliseconds.
FIRST_PAUSE_S = 0.001
LONGEST_PAUSE_S = 0.05


# A read snapshot another writer made stale: retrying the statement cannot help, only a new
# transaction can (never met here: writes begin IMMEDIATE).
SQLITE_BUSY_SNAPSHOT = 517


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED, extended codes included (BUSY_RECOVERY, BUSY_TIMEOUT...)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None or code == SQLITE_BUSY_SNAPSHOT:
        return False
    return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class InlineConnection:
    """An ``aiosqlite.Connection`` look-alike that runs every call on the calling thread."""

    def __init__(self, conn: sqlite3.Connection, busy_timeout_s: float) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn  # the dialect checks it is open
        self.busy_timeout_s = busy_timeout_s

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def cursor(self) -> InlineCursor:
        return InlineCursor(self, self._conn.cursor())

    async def commit(self) -> None:
        await self.run(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    async def run(self, call: Callable[[], Any]) -> Any:
        """``call()``; while the database is locked by another connection, again after a
        pause, for at most ``busy_timeout_s``."""
        deadline, pause = time.monotonic() + self.busy_timeout_s, FIRST_PAUSE_S
        while True:
            try:
                return call()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE_S)


class InlineCursor:
    """An ``aiosqlite.Cursor`` look-alike over a ``sqlite3.Cursor``."""

    def __init__(self, owner: InlineConnection, cursor: sqlite3.Cursor) -> None:
        self._owner = owner
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        await self._owner.run(lambda: self._cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        rows = list(parameters)  # kept whole: a retry after SQLITE_BUSY sends them again
        await self._owner.run(lambda: self._cursor.executemany(sql, rows))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> Sequence[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    @property
    def description(self) -> Any:
        return self._cursor.description


def connector(database: str, busy_timeout_s: float, uri: bool = False
              ) -> Callable[[], Any]:
    """The ``async_creator`` of an engine on ``database``: autocommit at the driver (the
    engine issues its own ``BEGIN``), no busy wait inside SQLite (``InlineConnection.run``
    waits instead)."""

    async def connect() -> InlineConnection:
        conn = sqlite3.connect(database, timeout=0, isolation_level=None,
                               check_same_thread=False, uri=uri)
        return InlineConnection(conn, busy_timeout_s)

    return connect
