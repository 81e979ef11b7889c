"""Engines, migrations and the store's identity.

``create_sql_engine`` tunes SQLite for a control plane (WAL, foreign keys, statements run on
the event loop's thread by ``inline_sqlite``, which makes concurrent writers wait instead of
failing, files readable by their owner only) and pings a pooled PostgreSQL connection only when
it sat idle (``PING_IDLE_S``); ``reading`` opens a connection for a pure read that, on SQLite,
takes no write lock, ``one_statement`` one for a single statement outside any transaction;
``migrate`` runs Alembic to head on a connection of that engine; ``ensure_instance_id`` gives
every store a stable random id (DESIGN.md section 2).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, insert, select
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from shepherd.errors import SqlStoreError
from shepherd.stores.sql.inline_sqlite import connector
from shepherd.stores.sql.tables import meta

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# A writer waits this long for SQLite's lock before failing: longer than any write we make.
SQLITE_BUSY_TIMEOUT_MS = 15_000
# Owner read/write only, as for the token files.
PRIVATE_FILE_MODE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal")
# The execution option of a pure read: a plain (deferred) BEGIN on SQLite, a snapshot in WAL mode
# that never waits for another process's writer. Ignored by PostgreSQL.
READ_ONLY = "shepherd_read_only"
# A pooled PostgreSQL connection idle this long is pinged before use.
PING_IDLE_S = 5.0
IDLE_SINCE = "shepherd_idle_since"
# The execution option of a connection for one statement: no transaction around it (the statement is
# its own snapshot), so no BEGIN and no ROLLBACK round trips.
ONE_STATEMENT = "shepherd_one_statement"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


async def create_sql_engine(url: str) -> AsyncEngine:
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise SqlStoreError(f"database URL is not valid: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.query:  # the driver opens the file itself: an option would be ignored
            raise SqlStoreError(f"a SQLite database URL takes no options, got "
                                f"{', '.join(sorted(parsed.query))}: {parsed.database}")
        return _sqlite_engine(url, parsed.database)
    return _postgres_engine(url)


def _postgres_engine(url: str) -> AsyncEngine:
    """A connection idle longer than ``PING_IDLE_S`` is pinged before use (a server restarted
    meanwhile has closed it, and the pool then opens a new one); one in steady use is not: a
    ping on every checkout was a round trip per transaction."""
    engine = create_async_engine(url)
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info[IDLE_SINCE] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(IDLE_SINCE)
        if since is None or time.monotonic() - since < PING_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool discards it and checks out another
            raise DisconnectionError(f"pooled connection is gone: {exc}") from exc

    return engine


def _sqlite_engine(url: str, database: str | None) -> AsyncEngine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        _keep_private(Path(database))
    # The driver runs each statement on the loop's thread (``inline_sqlite``) in autocommit
    # mode: transactions are ours, and BEGIN IMMEDIATE takes the write lock up front, so a
    # read-then-write transaction (CAS, admission) cannot be overtaken. Waiting for another
    # process's lock is the driver's (an asyncio sleep), not SQLite's busy handler.
    # One connection per process: SQLite runs one writer at a time anyway, and waiting in the
    # pool's asyncio queue costs microseconds where SQLite's busy handler sleeps up to 100 ms.
    engine = create_async_engine(
        url, async_creator=connector(database or ":memory:", SQLITE_BUSY_TIMEOUT_MS / 1000),
        pool_size=1, max_overflow=0, pool_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(ONE_STATEMENT, False):
            return  # the driver runs in autocommit mode: the statement is its own transaction
        conn.exec_driver_sql("BEGIN" if options.get(READ_ONLY, False) else "BEGIN IMMEDIATE")

    return engine


@contextlib.asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for a pure read (nothing written through it). A follower polling several
    times a second reads this way: on SQLite every other transaction takes the write lock up
    front, and waiting behind each writer of another process would delay every poll."""
    async with engine.connect() as conn:
        yield await conn.execution_options(**{READ_ONLY: True})


@contextlib.asynccontextmanager
async def one_statement(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for exactly one statement, outside any transaction (the statement is its
    own, atomic on both backends): a hot path's reads (a dispatcher pass, a page of exits) save
    the BEGIN and the ROLLBACK around them, its PostgreSQL batch writes (``arrays``) the BEGIN
    and the COMMIT. A caller running several statements through it gets several transactions."""
    async with engine.connect() as conn:
        if is_sqlite(engine):
            yield await conn.execution_options(**{ONE_STATEMENT: True})
        else:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")


def _keep_private(database: Path) -> None:
    """The database holds every input, output and token hash: owner-only, like the tokens.

    SQLite creates its ``-wal`` and ``-shm`` files with the mode of the database file, so
    creating that file 0600 before SQLite opens it covers all three; files an older version left
    readable by others are narrowed here.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    for path in (database, *(database.with_name(database.name + s) for s in SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mode & 0o077:
                path.chmod(PRIVATE_FILE_MODE)


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    # "heads": revisions added side by side off one parent all apply, whatever order they merge.
    command.upgrade(config, "heads")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade)
    except SQLAlchemyError as exc:
        raise SqlStoreError(f"migration failed: {exc}") from exc


async def ensure_instance_id(engine: AsyncEngine) -> str:
    """The store's instance id, created on first start and stable afterwards."""
    async with engine.begin() as conn:
        found = await conn.scalar(select(meta.c.value).where(meta.c.key == "instance_id"))
        if found is not None:
            return str(found)
        instance_id = secrets.token_hex(8)
        await conn.execute(insert(meta).values(key="instance_id", value=instance_id))
        return instance_id
