"""The one mapping from errors to HTTP responses, registered once on the app.

Every error body is ``{"code": ..., "message": ...}``: ``code`` is stable and machine-readable
(``ShepherdError.code``), ``message`` says what is wrong and where. Routes never catch errors
themselves. Bad input is a 4xx naming the field (``body.agent``, ``query.since``); an unexpected
exception is a 500 that says nothing about internals (it is logged here instead).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shepherd.errors import (
    AuthError,
    ConfigError,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ShepherdError,
    Unauthenticated,
)

log = logging.getLogger("shepherd.api")

# Most specific first: the first class an error is an instance of decides its status.
STATUS_BY_ERROR: tuple[tuple[type[ShepherdError], int], ...] = (
    (Unauthenticated, 401),
    (Forbidden, 403),
    (AuthError, 401),
    (NotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (ConfigError, 422),
)
# Store and agent failures are not the caller's fault, and may pass: try again later.
DEFAULT_ERROR_STATUS = 503


def status_for(exc: ShepherdError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return DEFAULT_ERROR_STATUS


def error_body(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def describe_request_errors(errors: Sequence[Any]) -> str:
    """``body.agent: field required; query.limit: ...`` for each problem."""
    parts = []
    for error in errors:
        location = _location(error.get("loc", ()))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts) or "invalid request"


def _location(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


async def _on_shepherd_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ShepherdError)
    status = status_for(exc)
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc.message)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(exc.code, exc.message), status_code=status, headers=headers)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(
        error_body("invalid_request", describe_request_errors(exc.errors())), status_code=422
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal_error", "internal error"), status_code=500)


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ShepherdError, _on_shepherd_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
