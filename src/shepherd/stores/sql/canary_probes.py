"""Deliberate, reversible damage to SQL for ``canary selftest``: flip one finished execution's
status without its event (what a write around the CAS repository would do), and put it back.

This is the one status write outside ``transitions.apply_chains``, on purpose: the self-test
proves the canary catches exactly such a write. The flip is guarded (only from the status read,
only back to it) and lasts one canary cycle. Must not be called by anything but the self-test.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shepherd.core.status import ExecutionStatus
from shepherd.stores.sql.errors import translated
from shepherd.stores.sql.tables import executions


class SqlCanaryProbes:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def newest(self, status: ExecutionStatus) -> tuple[str, str] | None:
        """``(id, agent)`` of the newest execution in ``status``, if any."""
        c = executions.c
        async with translated("find a row to flip"), self._engine.connect() as conn:
            row = (await conn.execute(select(c.id, c.agent).where(c.status == status.value)
                                      .order_by(c.id.desc()).limit(1))).first()
        return None if row is None else (row[0], row[1])

    async def flip(self, execution_id: str, seen: ExecutionStatus, to: ExecutionStatus) -> bool:
        """``seen -> to`` with no event; True when the row was still ``seen``."""
        async with translated("flip a row for the self-test"), self._engine.begin() as conn:
            result = await conn.execute(
                update(executions).where(executions.c.id == execution_id,
                                         executions.c.status == seen.value)
                .values(status=to.value))
        return bool(result.rowcount == 1)
