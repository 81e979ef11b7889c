"""Who is calling: bearer tokens, roles, and agent scope.

Each route states its minimum role once, in its signature (``principal: Operator``); the
dependency turns a missing or unknown token into 401 and too small a role into 403. A token
scoped to an agent sees only that agent: anything else answers 404, as if it did not exist, so a
scoped token cannot probe the fleet. Fleet-wide operations (tokens, fleet apply, agent create)
need an unscoped admin token.

``ensure_admin_token`` gives the first start an admin token in ``<data_dir>/admin.token``
(mode 0600); the secret is written nowhere else and never logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shepherd.api.context import Ctx
from shepherd.core.ids import AgentName
from shepherd.errors import AgentNotFound, Forbidden, Unauthenticated
from shepherd.private_files import write_private
from shepherd.services.tokens import Role, create_token, verify_token
from shepherd.stores.sql.database import Database
from shepherd.stores.sql.tokens import ApiToken

ADMIN_TOKEN_FILE = "admin.token"
FIRST_ADMIN_NAME = "first-admin"

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer shp_…`")


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: str
    name: str
    role: Role
    agent: AgentName | None  # the one agent a scoped token may touch

    def check_agent(self, agent: str) -> None:
        """404 for an agent outside this token's scope, exactly as for an unknown one."""
        if self.agent is not None and agent != self.agent:
            raise AgentNotFound(f"no agent named {agent!r}")

    def sees(self, agent: str) -> bool:
        return self.agent is None or agent == self.agent

    @classmethod
    def of(cls, token: ApiToken) -> Principal:
        return cls(token.id, token.name, Role(token.role),
                   AgentName(token.agent) if token.agent else None)


# Each dependency ``require`` made -> (role, fleet_wide), so the OpenAPI document can say which
# routes may answer 403 (docs.py).
REQUIREMENTS: dict[Callable[..., Awaitable[Principal]], tuple[Role, bool]] = {}


def require(role: Role, *, fleet_wide: bool = False) -> Callable[..., Awaitable[Principal]]:
    """The dependency a route uses to declare its minimum role."""

    async def authorize(
        ctx: Ctx,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        # The request guard (guard.py) verified the token before the body was read.
        token = getattr(request.state, "verified_token", None)
        if token is None:
            if credentials is None or not credentials.credentials:
                raise Unauthenticated(
                    "this endpoint needs a bearer token (Authorization: Bearer …)")
            token = await verify_token(ctx.db, credentials.credentials)
        principal = Principal.of(token)
        if not principal.role.allows(role):
            raise Forbidden(f"this needs the {role.value} role; the token has {principal.role}")
        if fleet_wide and principal.agent is not None:
            raise Forbidden(
                f"this acts on the whole fleet; the token is scoped to {principal.agent}"
            )
        return principal

    REQUIREMENTS[authorize] = (role, fleet_wide)
    return authorize


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
FleetAdmin = Annotated[Principal, Depends(require(Role.ADMIN, fleet_wide=True))]


async def ensure_admin_token(
    db: Database, data_dir: Path, now_ms: int | None = None
) -> Path | None:
    """Create an admin token when no live unscoped one exists; None when one does.

    The file is replaced atomically and is never readable by anyone but the owner, even briefly.
    """
    live = [t for t in await db.tokens.list() if t.revoked_at_ms is None]
    if any(t.role == Role.ADMIN.value and t.agent is None for t in live):
        return None
    created = await create_token(
        db, name=FIRST_ADMIN_NAME, role=Role.ADMIN, agent=None,
        now_ms=now_ms if now_ms is not None else db.clock.now_ms(),
    )
    path = data_dir / ADMIN_TOKEN_FILE
    write_private(path, created.secret + "\n")
    return path
