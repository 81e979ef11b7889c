"""Dashboard sessions: signing in with a pasted token or a one-time code, and what a session is.

A session stands for the API token it signed in with: the role and agent scope are the token's,
read again on every use, so revoking the token ends its sessions at once. The browser holds only
the session's random secret (in an HttpOnly cookie); Redis holds its digest, the token id and a
CSRF secret that every state-changing form must echo. A one-time sign-in code (``shepherd up``'s
link) is a random secret whose digest maps to a token id for a few minutes and is consumed by
the first exchange, so neither the token nor a reusable credential ever appears in a URL.

Guarantees: secrets are compared in constant time; a revoked, deleted or unknown token never
yields a session; codes are single use. Must not: log or return a token secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from shepherd.errors import NotFound, Unauthenticated
from shepherd.services.tokens import verify_token
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database
from shepherd.stores.sql.tokens import ApiToken

SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class Session:
    token: ApiToken
    csrf: str
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class NewSession:
    secret: str  # for the cookie; stored nowhere
    session: Session


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


async def sign_in_with_token(
    db: Database, redis: RedisHandle, token_secret: str, *, now_ms: int, ttl_s: int
) -> NewSession:
    """A session for a pasted API token; ``Unauthenticated`` when it is unknown or revoked."""
    token = await verify_token(db, token_secret.strip())
    return await _open(redis, token, now_ms, ttl_s)


async def issue_signin_code(redis: RedisHandle, token: ApiToken, ttl_s: int) -> str:
    """A single-use code that signs in as ``token`` within ``ttl_s``."""
    while True:
        code = secrets.token_urlsafe(SECRET_BYTES)
        if await redis.sessions.put_signin_code(digest(code), token.id, ttl_s):
            return code


async def signin_code_holder(db: Database, redis: RedisHandle, code: str) -> ApiToken | None:
    """Whom a code would sign in as, without using it up; None when it is no (longer) good."""
    token_id = await redis.sessions.peek_signin_code(digest(code))
    return await _live_token(db, token_id) if token_id else None


async def sign_in_with_code(
    db: Database, redis: RedisHandle, code: str, *, now_ms: int, ttl_s: int
) -> NewSession:
    """Exchange a one-time code for a session; ``Unauthenticated`` when used, expired or unknown."""
    token_id = await redis.sessions.take_signin_code(digest(code))
    token = await _live_token(db, token_id) if token_id else None
    if token is None:
        raise Unauthenticated(
            "this sign-in link was already used, has expired, or is not one this control plane "
            "issued; paste a token instead"
        )
    return await _open(redis, token, now_ms, ttl_s)


async def resolve_session(db: Database, redis: RedisHandle, secret: str) -> Session | None:
    """The live session behind a cookie; None when it expired or its token was revoked."""
    found = await redis.sessions.get_session(digest(secret))
    if found is None:
        return None
    token = await _live_token(db, str(found.get("token_id", "")))
    if token is None:
        return None
    return Session(token, str(found.get("csrf", "")), int(found.get("created_at_ms", 0)))


async def sign_out(redis: RedisHandle, secret: str) -> None:
    await redis.sessions.delete_session(digest(secret))


def csrf_matches(session: Session, given: str | None) -> bool:
    return bool(given) and bool(session.csrf) and hmac.compare_digest(session.csrf, given or "")


async def _open(redis: RedisHandle, token: ApiToken, now_ms: int, ttl_s: int) -> NewSession:
    secret = secrets.token_urlsafe(SECRET_BYTES)
    session = Session(token, secrets.token_urlsafe(SECRET_BYTES), now_ms)
    await redis.sessions.put_session(
        digest(secret),
        {"token_id": token.id, "csrf": session.csrf, "created_at_ms": now_ms},
        ttl_s,
    )
    return NewSession(secret, session)


async def _live_token(db: Database, token_id: str) -> ApiToken | None:
    try:
        token = await db.tokens.get(token_id)
    except NotFound:
        return None
    return token if token.revoked_at_ms is None else None
