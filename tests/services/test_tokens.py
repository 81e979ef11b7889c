"""Tokens: a secret shown once, stored hashed; verify refuses unknown and revoked tokens."""

from __future__ import annotations

import pytest

from shepherd.core.clock import ManualClock
from shepherd.errors import Unauthenticated
from shepherd.services.tokens import (
    Role,
    create_token,
    hash_secret,
    list_tokens,
    revoke_token,
    verify_token,
)
from shepherd.stores.sql.database import Database


def test_roles_are_ordered_admin_over_operator_over_viewer() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.ADMIN.allows(Role.VIEWER)
    assert Role.OPERATOR.allows(Role.VIEWER) and not Role.OPERATOR.allows(Role.ADMIN)
    assert not Role.VIEWER.allows(Role.OPERATOR)


async def test_a_created_token_verifies_and_is_stored_only_as_a_hash(
    db: Database, clock: ManualClock
) -> None:
    made = await create_token(db, name="ci", role=Role.OPERATOR, agent=None, now_ms=clock.now_ms())
    assert (await verify_token(db, made.secret)).id == made.token.id
    [stored] = await list_tokens(db)
    assert made.secret not in repr(stored)
    assert await db.tokens.find_by_hash(hash_secret(made.secret)) is not None


async def test_unknown_and_revoked_tokens_do_not_verify(db: Database, clock: ManualClock) -> None:
    made = await create_token(db, name="ci", role=Role.VIEWER, agent=None, now_ms=clock.now_ms())
    with pytest.raises(Unauthenticated):
        await verify_token(db, "shp_made-up")
    revoked = await revoke_token(db, made.token.id, clock.now_ms())
    assert revoked.revoked_at_ms == clock.now_ms()
    with pytest.raises(Unauthenticated):
        await verify_token(db, made.secret)
