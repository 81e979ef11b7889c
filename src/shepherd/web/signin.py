"""Signing in to the dashboard and out of it.

Two ways in: paste an API token (``POST /signin``), or follow the one-time link ``shepherd up``
prints for the local admin (``GET /signin/link?code=…`` shows whom it signs in as; its button
posts the code, which is then used up). Either sets the session cookie: HttpOnly, SameSite=Strict,
Secure over HTTPS, for ``session_ttl_s``. Sign-in forms are accepted only from this origin (no
one can sign a visitor in to their own session from another site). ``GET /signin/check`` answers
204 with a live session and 401 without: the page script asks it when the live connection is
refused, to tell an ended session from a network failure.

Must not: put a token or a reusable credential in a URL, or say whether an unknown token ever
existed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from shepherd.api.auth import FIRST_ADMIN_NAME
from shepherd.api.context import ApiContext, Ctx
from shepherd.api.session_auth import SESSION_COOKIE, same_origin, session_of
from shepherd.errors import Forbidden, Unauthenticated
from shepherd.services.sessions import (
    NewSession,
    issue_signin_code,
    sign_in_with_code,
    sign_in_with_token,
    sign_out,
    signin_code_holder,
)
from shepherd.services.tokens import SECRET_PREFIX, Role
from shepherd.stores.sql.tokens import ApiToken
from shepherd.web.rendering import render
from shepherd.web.routing import PageRoute, StateChange, local_path

router = APIRouter(route_class=PageRoute, include_in_schema=False)

BAD_TOKEN = (
    "That token was not accepted: it is unknown or has been revoked. Paste the whole token "
    f"(it starts with {SECRET_PREFIX}), from admin.token in the data dir or from "
    "`shepherd token create`."
)


@router.get("/signin")
async def signin_page(
    request: Request, ctx: Ctx, back_to: Annotated[str, Query(alias="next")] = "/"
) -> Response:
    if await session_of(ctx, request) is not None:
        return RedirectResponse(local_path(back_to), status_code=303)
    return render(request, "signin.html", next=local_path(back_to), error=None)


@router.post("/signin")
async def signin(
    request: Request, ctx: Ctx, token: Annotated[str, Form()] = "",
    back_to: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    _require_same_origin(request)
    try:
        opened = await sign_in_with_token(ctx.db, ctx.redis, token, now_ms=ctx.clock.now_ms(),
                                          ttl_s=ctx.settings.session_ttl_s)
    except Unauthenticated:
        message = BAD_TOKEN if token.strip() else "Paste an API token to sign in."
        return render(request, "signin.html", 401, next=local_path(back_to), error=message)
    return _signed_in(request, ctx, opened, local_path(back_to))


@router.get("/signin/link")
async def signin_link_page(request: Request, ctx: Ctx, code: str = "") -> Response:
    holder = await signin_code_holder(ctx.db, ctx.redis, code) if code else None
    if holder is None:
        return render(request, "signin.html", 401, next="/", error=(
            "This sign-in link was already used or has expired. Paste a token instead, or "
            "restart `shepherd up` for a new link."))
    return render(request, "signin_link.html", code=code, holder=holder)


@router.post("/signin/link")
async def signin_with_link(
    request: Request, ctx: Ctx, code: Annotated[str, Form()] = ""
) -> Response:
    _require_same_origin(request)
    try:
        opened = await sign_in_with_code(ctx.db, ctx.redis, code, now_ms=ctx.clock.now_ms(),
                                         ttl_s=ctx.settings.session_ttl_s)
    except Unauthenticated as exc:
        return render(request, "signin.html", 401, next="/", error=exc.message)
    return _signed_in(request, ctx, opened, "/")


@router.get("/signin/check")
async def signin_check(request: Request, ctx: Ctx) -> Response:
    live = await session_of(ctx, request) is not None
    return Response(status_code=204 if live else 401)


@router.post("/signout")
async def signout(request: Request, ctx: Ctx, viewer: StateChange) -> Response:
    await sign_out(ctx.redis, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _require_same_origin(request: Request) -> None:
    if not same_origin(request.headers):
        raise Forbidden("refused: sign-in forms are accepted only from this dashboard's pages")


def _signed_in(request: Request, ctx: ApiContext, opened: NewSession, to: str) -> Response:
    response = RedirectResponse(to, status_code=303)
    response.set_cookie(
        SESSION_COOKIE, opened.secret, max_age=ctx.settings.session_ttl_s, path="/",
        httponly=True, samesite="strict", secure=request.url.scheme == "https",
    )
    return response


async def local_admin_signin_url(ctx: ApiContext, base_url: str) -> str | None:
    """A one-time sign-in link for this machine's admin, or None when there is no such token."""
    token = _local_admin(await ctx.db.tokens.list())
    if token is None:
        return None
    code = await issue_signin_code(ctx.redis, token, ctx.settings.signin_link_ttl_s)
    return f"{base_url}/signin/link?code={code}"


def _local_admin(tokens: list[ApiToken]) -> ApiToken | None:
    live = [t for t in tokens if t.revoked_at_ms is None and t.agent is None
            and t.role == Role.ADMIN.value]
    first = [t for t in live if t.name == FIRST_ADMIN_NAME]
    return next(iter(first or live), None)
