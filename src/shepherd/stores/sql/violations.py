"""The canary's findings in SQL: ``canary_violations``, written once per cycle, read by the API.

``record`` inserts one cycle's violations in one transaction and drops rows older than the
retention in the same go, so the table is bounded by age, never by a count that a busy cycle
could overrun. Reads filter by invariant, severity, tier and time and page newest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shepherd.stores.sql.errors import translated
from shepherd.stores.sql.tables import canary_violations


@dataclass(frozen=True, slots=True)
class StoredViolation:
    id: int
    cycle_at_ms: int
    invariant_id: str
    entity: str
    tier: str
    severity: str
    message: str
    observed: dict[str, Any]
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class NewViolation:
    invariant_id: str
    entity: str
    tier: str
    severity: str
    message: str
    observed: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ViolationFilter:
    invariant_id: str | None = None
    severity: str | None = None
    tier: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    before_id: int | None = None
    limit: int = 100


class ViolationRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(
        self, cycle_at_ms: int, found: Sequence[NewViolation], now_ms: int, keep_since_ms: int
    ) -> list[int]:
        """Store one cycle's violations; returns their ids in order."""
        ids: list[int] = []
        async with translated("record canary violations"), self._engine.begin() as conn:
            await conn.execute(delete(canary_violations)
                               .where(canary_violations.c.cycle_at_ms < keep_since_ms))
            for v in found:
                result = await conn.execute(insert(canary_violations).values(
                    cycle_at_ms=cycle_at_ms, invariant_id=v.invariant_id, entity=v.entity[:200],
                    tier=v.tier, severity=v.severity, message=v.message, observed=v.observed,
                    created_at_ms=now_ms,
                ))
                key = result.inserted_primary_key
                assert key is not None
                ids.append(int(key[0]))
        return ids

    async def query(self, f: ViolationFilter) -> list[StoredViolation]:
        c = canary_violations.c
        query = select(canary_violations)
        for column, value in ((c.invariant_id, f.invariant_id), (c.severity, f.severity),
                              (c.tier, f.tier)):
            if value is not None:
                query = query.where(column == value)
        if f.since_ms is not None:
            query = query.where(c.cycle_at_ms >= f.since_ms)
        if f.until_ms is not None:
            query = query.where(c.cycle_at_ms < f.until_ms)
        if f.before_id is not None:
            query = query.where(c.id < f.before_id)
        async with translated("list canary violations"), self._engine.connect() as conn:
            rows = await conn.execute(query.order_by(c.id.desc()).limit(f.limit))
            return [StoredViolation(**r) for r in rows.mappings()]

    async def get(self, violation_id: int) -> StoredViolation | None:
        async with translated("read a canary violation"), self._engine.connect() as conn:
            row = (await conn.execute(select(canary_violations).where(
                canary_violations.c.id == violation_id))).mappings().first()
        return None if row is None else StoredViolation(**row)

    async def stats(self, since_ms: int) -> list[tuple[str, str, int, int]]:
        """``(invariant_id, severity, count, last cycle_at_ms)`` since ``since_ms``."""
        c = canary_violations.c
        query = (select(c.invariant_id, c.severity, func.count(), func.max(c.cycle_at_ms))
                 .where(c.cycle_at_ms >= since_ms).group_by(c.invariant_id, c.severity)
                 .order_by(c.invariant_id))
        async with translated("count canary violations"), self._engine.connect() as conn:
            return [(r[0], r[1], int(r[2]), int(r[3])) for r in await conn.execute(query)]
