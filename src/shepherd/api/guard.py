"""The API's front door, as pure ASGI middleware: who is asking, then how much they send.

For every ``/api`` request the bearer token is verified before a byte of the body is read: a
request without a valid token is answered 401 at once, whatever it carries, and never parsed.
Then, for every request, the body is counted as it streams in and read at most up to
``max_body_bytes``: a declared ``Content-Length`` above it is refused before reading, and a
streamed body is refused (413, the limit in the message) as soon as it passes the limit, without
reading the rest, so memory stays flat however large or frequent oversized requests are. A body
within the limit is handed to the app as it came. Roles are still checked by each route's
dependency, which reuses the token verified here (``request.state.verified_token``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shepherd.api.errors import error_body, status_for
from shepherd.errors import PayloadTooLarge, ShepherdError, Unauthenticated
from shepherd.stores.sql.tokens import ApiToken

Verify = Callable[[str], Awaitable[ApiToken]]
PROTECTED_PREFIX = "/api"


class RequestGuard:
    def __init__(self, app: ASGIApp, *, verify: Verify, max_body_bytes: int) -> None:
        self._app = app
        self._verify = verify
        self._max = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        try:
            if _protected(scope["path"]):
                token = await self._verify(_bearer(scope))
                scope.setdefault("state", {})["verified_token"] = token
            body = await self._read_body(scope, receive)
        except ShepherdError as exc:
            await _refuse(send, exc)
            return
        await self._app(scope, _replay(body, receive), send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees an empty body and a disconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the request body is larger than the limit of {self._max} bytes "
            "(SHEPHERD_MAX_REQUEST_BODY_BYTES)"
        )


def _protected(path: str) -> bool:
    return path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _bearer(scope: Scope) -> str:
    scheme, _, secret = (_header(scope, b"authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated("this endpoint needs a bearer token (Authorization: Bearer …)")
    return secret.strip()


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body, once, as a single message; after that the client's own messages (disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send: Send, exc: ShepherdError) -> None:
    import json

    status = status_for(exc)
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if status == 413:
        headers.append((b"connection", b"close"))  # the rest of the body is never read
    payload: Any = error_body(exc.code, exc.message)
    data = json.dumps(payload).encode()
    headers.append((b"content-length", str(len(data)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
