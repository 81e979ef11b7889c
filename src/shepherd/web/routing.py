"""Who is looking at a page, and how page routes answer errors: in HTML, for people.

``PageViewer`` / ``FormOperator`` are the dependencies of the dashboard's routes:

- a page needs a live session (else a redirect to the sign-in page, back here afterwards);
- a state change (every POST but signing in) needs the session, a request from this origin, the
  session's CSRF token in the form (``csrf_token``) or the ``X-CSRF-Token`` header, and the
  operator role. A POST without the CSRF token is refused with 403 and says why, whatever the
  role.

``PageRoute`` renders any ``ShepherdError`` (and bad query parameters) as an error page with the
status the REST API would answer, so a page never shows a JSON body or a bare 500.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute

from shepherd.api.auth import Principal
from shepherd.api.context import Ctx
from shepherd.api.errors import describe_request_errors, status_for
from shepherd.api.session_auth import same_origin, session_of
from shepherd.errors import Forbidden, ShepherdError, Unauthenticated
from shepherd.services.sessions import csrf_matches
from shepherd.services.tokens import Role
from shepherd.web.rendering import render

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True, slots=True)
class Viewer:
    principal: Principal
    csrf: str

    @property
    def can_operate(self) -> bool:
        return self.principal.role.allows(Role.OPERATOR)


def local_path(candidate: str | None) -> str:
    """A path on this site to go back to after signing in; anything else becomes ``/``."""
    if candidate and candidate.startswith("/") and not candidate.startswith(("//", "/\\")):
        return candidate
    return "/"


async def page_viewer(request: Request, ctx: Ctx) -> Viewer:
    session = await session_of(ctx, request)
    if session is None:
        query = f"?{request.url.query}" if request.url.query else ""
        raise SignInRequired(request.url.path + query)
    return Viewer(Principal.of(session.token), session.csrf)


async def state_change(request: Request, ctx: Ctx) -> Viewer:
    """The signed-in viewer behind a POST from this origin that carries the CSRF token."""
    if not same_origin(request.headers):
        raise Forbidden("refused: this form was not sent from the dashboard's own pages")
    session = await session_of(ctx, request)
    if session is None:
        raise Unauthenticated("your dashboard session has ended; sign in again")
    form = await request.form()
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not csrf_matches(session, given if isinstance(given, str) else None):
        raise Forbidden(
            "refused: this request did not carry the dashboard's CSRF token, so it may not come "
            "from the dashboard; reload the page and try again"
        )
    return Viewer(Principal.of(session.token), session.csrf)


async def form_operator(request: Request, ctx: Ctx) -> Viewer:
    viewer = await state_change(request, ctx)
    if not viewer.can_operate:
        raise Forbidden(f"this needs the operator role; you are signed in as "
                        f"{viewer.principal.name} ({viewer.principal.role})")
    return viewer


PageViewer = Annotated[Viewer, Depends(page_viewer)]
FormOperator = Annotated[Viewer, Depends(form_operator)]
StateChange = Annotated[Viewer, Depends(state_change)]


class PageRoute(APIRoute):
    """A route whose errors are pages: sign-in redirects, and the API's statuses in HTML."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handle(request)
            except SignInRequired as exc:
                return RedirectResponse(f"/signin?next={quote(exc.next_path)}", status_code=303)
            except ShepherdError as exc:
                return error_page(request, status_for(exc), exc.message)
            except RequestValidationError as exc:
                return error_page(request, 422, describe_request_errors(exc.errors()))

        return page_handler


def error_page(request: Request, status_code: int, message: str) -> Response:
    return render(request, "error.html", status_code, status_code=status_code, message=message)
