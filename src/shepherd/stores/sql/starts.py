"""What runtimes answered to starts (pid, start instant, boot id), recorded on rows that are
still ``running``: not a status write, no event. A row that left ``running`` (cancelled, timed
out, finalized by a fast exit) is left as it is, and the caller learns which rows were written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shepherd.core.status import ExecutionStatus
from shepherd.core.text import storable_text
from shepherd.stores.sql import arrays
from shepherd.stores.sql.engine import is_sqlite, one_statement
from shepherd.stores.sql.errors import translated
from shepherd.stores.sql.tables import executions
from shepherd.stores.sql.transitions import column_width

RUNNING = ExecutionStatus.RUNNING.value
BOOT_ID_CHARS = column_width(executions.c.runtime_boot_id)
_STARTED = ("pid", "started_at_ms", "runtime_boot_id")
_RECORD_START = (update(executions)
                 .where(executions.c.id == bindparam("start_id"),
                        executions.c.status == RUNNING)
                 .values(pid=bindparam("pid"), started_at_ms=bindparam("started_at_ms"),
                         runtime_boot_id=bindparam("runtime_boot_id")))


@dataclass(frozen=True, slots=True)
class RuntimeStart:
    """What a runtime answered to a start: recorded on the row, not a status write."""

    execution_id: str
    pid: int | None
    started_at_ms: int
    boot_id: str


async def record_starts(engine: AsyncEngine, starts: Sequence[RuntimeStart]) -> list[bool]:
    """``starts`` on the rows still running; True per row written. SQLite: one transaction, one
    batched UPDATE; a row that left ``running`` never comes back to it, so where the driver's
    count says fewer rows than asked, the rows running after the UPDATE are those it wrote.
    PostgreSQL: one statement, which returns the rows it wrote."""
    if not starts:
        return []
    if not is_sqlite(engine):
        return await _record_at_once(engine, starts)
    c = executions.c
    ids = [s.execution_id for s in starts]
    async with translated("record start"), engine.begin() as conn:
        result = await conn.execute(_RECORD_START, [
            {"start_id": s.execution_id, "pid": s.pid, "started_at_ms": s.started_at_ms,
             "runtime_boot_id": storable_text(s.boot_id, BOOT_ID_CHARS)} for s in starts])
        counted = len(starts) == 1 or conn.dialect.supports_sane_multi_rowcount
        if counted and result.rowcount == len(starts):
            return [True] * len(starts)
        running = set((await conn.execute(
            select(c.id).where(c.id.in_(ids), c.status == RUNNING))).scalars())
    return [i in running for i in ids]


async def _record_at_once(engine: AsyncEngine, starts: Sequence[RuntimeStart]) -> list[bool]:
    params = {arrays.IDS: [s.execution_id for s in starts],
              arrays.column_array("pid"): [s.pid for s in starts],
              arrays.column_array("started_at_ms"): [s.started_at_ms for s in starts],
              arrays.column_array("runtime_boot_id"): [
                  storable_text(s.boot_id, BOOT_ID_CHARS) for s in starts]}
    async with translated("record start"), one_statement(engine) as conn:
        written = set((await conn.execute(arrays.column_writes(_STARTED, RUNNING), params))
                      .scalars())
    return [s.execution_id in written for s in starts]
