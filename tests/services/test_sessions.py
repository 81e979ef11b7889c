"""Dashboard sessions over real stores: a session is its token (revoking one ends the other),
codes are single use, and neither a token nor a session secret is stored in clear."""

from __future__ import annotations

import pytest

from shepherd.core.clock import ManualClock
from shepherd.errors import Unauthenticated
from shepherd.services.sessions import (
    csrf_matches,
    issue_signin_code,
    resolve_session,
    sign_in_with_code,
    sign_in_with_token,
    sign_out,
    signin_code_holder,
)
from shepherd.services.tokens import Role, create_token, revoke_token
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database
from tests.stores.redis.helpers import keyspace

TTL_S = 3600


async def stored_text(redis: RedisHandle) -> str:
    keys = await keyspace(redis)
    return " ".join([*keys, *[str(await redis.client.get(k)) for k in keys]])


async def test_a_token_signs_in_and_its_revocation_ends_the_session(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    made = await create_token(db, name="ops", role=Role.OPERATOR, agent=None,
                              now_ms=clock.now_ms())
    opened = await sign_in_with_token(db, redis_handle, f"  {made.secret}\n",
                                      now_ms=clock.now_ms(), ttl_s=TTL_S)
    session = await resolve_session(db, redis_handle, opened.secret)
    assert session is not None and session.token.id == made.token.id
    assert session.csrf == opened.session.csrf and len(session.csrf) > 30
    stored = await stored_text(redis_handle)
    assert made.secret not in stored and opened.secret not in stored
    await revoke_token(db, made.token.id, clock.now_ms())
    assert await resolve_session(db, redis_handle, opened.secret) is None


async def test_an_unknown_token_or_cookie_gets_nothing(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    with pytest.raises(Unauthenticated):
        await sign_in_with_token(db, redis_handle, "shp_nope", now_ms=0, ttl_s=TTL_S)
    assert await resolve_session(db, redis_handle, "made-up") is None
    assert await keyspace(redis_handle) == set()


async def test_a_signin_code_works_once(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    made = await create_token(db, name="first-admin", role=Role.ADMIN, agent=None,
                              now_ms=clock.now_ms())
    code = await issue_signin_code(redis_handle, made.token, ttl_s=60)
    holder = await signin_code_holder(db, redis_handle, code)
    assert holder is not None and holder.id == made.token.id  # peeking does not use it up
    opened = await sign_in_with_code(db, redis_handle, code, now_ms=0, ttl_s=TTL_S)
    assert opened.session.token.id == made.token.id
    assert await signin_code_holder(db, redis_handle, code) is None
    with pytest.raises(Unauthenticated, match="already used, has expired"):
        await sign_in_with_code(db, redis_handle, code, now_ms=0, ttl_s=TTL_S)
    assert made.secret not in await stored_text(redis_handle)
    assert code not in await stored_text(redis_handle)


async def test_a_code_for_a_revoked_token_signs_nobody_in(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    made = await create_token(db, name="x", role=Role.ADMIN, agent=None, now_ms=0)
    code = await issue_signin_code(redis_handle, made.token, ttl_s=60)
    await revoke_token(db, made.token.id, 0)
    assert await signin_code_holder(db, redis_handle, code) is None
    with pytest.raises(Unauthenticated):
        await sign_in_with_code(db, redis_handle, code, now_ms=0, ttl_s=TTL_S)


async def test_signing_out_forgets_the_session_and_csrf_must_match_exactly(
    db: Database, redis_handle: RedisHandle
) -> None:
    made = await create_token(db, name="v", role=Role.VIEWER, agent=None, now_ms=0)
    opened = await sign_in_with_token(db, redis_handle, made.secret, now_ms=0, ttl_s=TTL_S)
    session = opened.session
    assert csrf_matches(session, session.csrf)
    assert not csrf_matches(session, None)
    assert not csrf_matches(session, "")
    assert not csrf_matches(session, session.csrf[:-1])
    await sign_out(redis_handle, opened.secret)
    assert await resolve_session(db, redis_handle, opened.secret) is None
    assert await keyspace(redis_handle) == set()
