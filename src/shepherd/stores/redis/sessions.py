"""Dashboard sessions and one-time sign-in codes, shared by every control-plane replica.

A session is one string key holding JSON (the token it signed in with, its CSRF secret, when it
began), written with its TTL in the same command; a sign-in code is one string key holding a
token id, taken with GETDEL so exactly one exchange can ever succeed. Keys are named by a digest
of the secret, never by the secret: a reader of Redis cannot sign in with what it finds there.

Must not: see a cookie or code in clear (callers pass digests), or decide whether a session is
still good (the token behind it may have been revoked: the sessions service checks that).
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys


class SessionStore:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    async def put_session(self, digest: str, fields: dict[str, Any], ttl_s: int) -> None:
        async with translated("store session"):
            await self._client.set(self._keys.web_session(digest), json.dumps(fields), ex=ttl_s)

    async def get_session(self, digest: str) -> dict[str, Any] | None:
        async with translated("read session"):
            raw = await self._client.get(self._keys.web_session(digest))
        if raw is None:
            return None
        found = json.loads(raw)
        return found if isinstance(found, dict) else None

    async def delete_session(self, digest: str) -> None:
        async with translated("delete session"):
            await self._client.delete(self._keys.web_session(digest))

    async def put_signin_code(self, digest: str, token_id: str, ttl_s: int) -> bool:
        """False when a code with this digest already exists (it is never overwritten)."""
        async with translated("store sign-in code"):
            return bool(await self._client.set(
                self._keys.web_signin_code(digest), token_id, ex=ttl_s, nx=True
            ))

    async def peek_signin_code(self, digest: str) -> str | None:
        async with translated("read sign-in code"):
            found = await self._client.get(self._keys.web_signin_code(digest))
        return str(found) if found is not None else None

    async def take_signin_code(self, digest: str) -> str | None:
        """The token id, once: the code is gone after the first call that finds it."""
        async with translated("take sign-in code"):
            found = await self._client.getdel(self._keys.web_signin_code(digest))
        return str(found) if found is not None else None
