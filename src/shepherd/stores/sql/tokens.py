"""API tokens: only hashes are stored; the plaintext never reaches this module."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from shepherd.errors import NotFound
from shepherd.stores.sql.errors import translated
from shepherd.stores.sql.tables import api_tokens


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: str
    name: str
    role: str
    agent: str | None
    created_at_ms: int
    revoked_at_ms: int | None
    last_used_at_ms: int | None


def _token(row: RowMapping) -> ApiToken:
    return ApiToken(row["id"], row["name"], row["role"], row["agent_scope"],
                    row["created_at_ms"], row["revoked_at_ms"], row["last_used_at_ms"])


class TokenRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self, *, name: str, role: str, agent: str | None, token_hash: str, now_ms: int
    ) -> ApiToken:
        token_id = f"tok_{secrets.token_hex(6)}"
        async with translated("create token"), self._engine.begin() as conn:
            await conn.execute(insert(api_tokens).values(
                id=token_id, name=name, role=role, agent_scope=agent, token_hash=token_hash,
                created_at_ms=now_ms,
            ))
        return await self.get(token_id)

    async def get(self, token_id: str) -> ApiToken:
        async with translated("read token"), self._engine.connect() as conn:
            row = (await conn.execute(select(api_tokens).where(api_tokens.c.id == token_id))
                   ).mappings().first()
        if row is None:
            raise NotFound(f"token {token_id!r} does not exist")
        return _token(row)

    async def find_by_hash(self, token_hash: str) -> ApiToken | None:
        async with translated("read token"), self._engine.connect() as conn:
            row = (await conn.execute(select(api_tokens)
                                      .where(api_tokens.c.token_hash == token_hash))
                   ).mappings().first()
        return _token(row) if row else None

    async def list(self) -> list[ApiToken]:
        async with translated("list tokens"), self._engine.connect() as conn:
            rows = (await conn.execute(select(api_tokens).order_by(api_tokens.c.created_at_ms,
                                                                   api_tokens.c.id))
                    ).mappings().all()
        return [_token(r) for r in rows]

    async def revoke(self, token_id: str, now_ms: int) -> None:
        """Revoke; revoking twice keeps the first instant."""
        await self.get(token_id)
        async with translated("revoke token"), self._engine.begin() as conn:
            await conn.execute(update(api_tokens).where(
                api_tokens.c.id == token_id, api_tokens.c.revoked_at_ms.is_(None)
            ).values(revoked_at_ms=now_ms))

    async def touch(self, token_id: str, now_ms: int) -> None:
        async with translated("touch token"), self._engine.begin() as conn:
            await conn.execute(update(api_tokens).where(api_tokens.c.id == token_id)
                               .values(last_used_at_ms=now_ms))
