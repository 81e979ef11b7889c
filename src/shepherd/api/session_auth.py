"""Who is calling, for the callers that cannot send a bearer header: the dashboard's browser.

A browser authenticates with the session cookie set at sign-in (HttpOnly, SameSite=Strict); the
session stands for an API token, so a principal from a cookie is exactly the principal of that
token. Because a browser attaches the cookie by itself, a cookie is only honoured when the
request comes from this control plane's own pages: the ``Origin`` (or, failing that,
``Sec-Fetch-Site``) must say so. A WebSocket is accepted with either a bearer header (scripts)
or the cookie (the dashboard).

Must not: accept a cookie from a cross-site request, or a token in a URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from shepherd.api.auth import Principal
from shepherd.api.context import ApiContext
from shepherd.errors import Forbidden, Unauthenticated
from shepherd.services.sessions import Session, resolve_session
from shepherd.services.tokens import verify_token

SESSION_COOKIE = "shepherd_session"


def same_origin(headers: Mapping[str, str]) -> bool:
    """True when a browser says the request comes from a page of this very host."""
    origin = headers.get("origin")
    if origin:
        return urlsplit(origin).netloc == headers.get("host", "")
    # No Origin: a same-origin GET or a non-browser client; a browser still says where from.
    return headers.get("sec-fetch-site", "same-origin") in {"same-origin", "none"}


async def session_of(ctx: ApiContext, conn: HTTPConnection) -> Session | None:
    """The live session behind the request's cookie, if any (origin not checked here)."""
    secret = conn.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    return await resolve_session(ctx.db, ctx.redis, secret)


async def connection_principal(ctx: ApiContext, conn: HTTPConnection) -> Principal:
    """A bearer header (as for the REST API), else a same-origin session cookie."""
    scheme, _, secret = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and secret.strip():
        return Principal.of(await verify_token(ctx.db, secret.strip()))
    if conn.cookies.get(SESSION_COOKIE):
        if not same_origin(conn.headers):
            raise Forbidden("a session cookie is only accepted from this control plane's pages")
        session = await session_of(ctx, conn)
        if session is not None:
            return Principal.of(session.token)
        raise Unauthenticated("the dashboard session expired or its token was revoked; sign in")
    raise Unauthenticated("this endpoint needs a bearer token (Authorization: Bearer …)")
