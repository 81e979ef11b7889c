"""API tokens: created with a secret shown once, stored only as a SHA-256 hash, verified, revoked.

Guarantees: the plaintext secret leaves this module exactly once, in ``create_token``'s result;
the store never sees it. A revoked token never verifies again. Roles are ordered
admin > operator > viewer; a token scoped to an agent acts on that agent only.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from shepherd.core.ids import AgentName
from shepherd.errors import Unauthenticated
from shepherd.stores.sql.database import Database
from shepherd.stores.sql.tokens import ApiToken

# Every secret starts with this, so a leaked one is recognisable (log scrubbing, canary G-04).
SECRET_PREFIX = "shp_"
SECRET_BYTES = 32


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"

    def allows(self, needed: Role) -> bool:
        """True when a token of this role may do what ``needed`` may do."""
        return _RANK[self] >= _RANK[needed]


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class CreatedToken:
    token: ApiToken
    secret: str  # shown once; never stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


async def create_token(
    db: Database, *, name: str, role: Role, agent: AgentName | None, now_ms: int
) -> CreatedToken:
    """A new token; ``agent`` must exist (``AgentNotFound`` otherwise)."""
    if agent is not None:
        await db.agents.get(agent)
    secret = new_secret()
    token = await db.tokens.create(
        name=name, role=role.value, agent=agent, token_hash=hash_secret(secret), now_ms=now_ms
    )
    return CreatedToken(token, secret)


async def verify_token(db: Database, secret: str) -> ApiToken:
    """The live token this secret belongs to, or ``Unauthenticated``."""
    token = await db.tokens.find_by_hash(hash_secret(secret))
    if token is None or token.revoked_at_ms is not None:
        raise Unauthenticated("the bearer token is unknown or revoked")
    return token


async def list_tokens(db: Database) -> list[ApiToken]:
    return list(await db.tokens.list())


async def revoke_token(db: Database, token_id: str, now_ms: int) -> ApiToken:
    """Revoke a token (``NotFound`` when unknown); revoking twice keeps the first instant."""
    await db.tokens.revoke(token_id, now_ms)
    return await db.tokens.get(token_id)
