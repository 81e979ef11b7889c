"""``/api/events``: live events over a WebSocket, for the dashboard and for scripts.

Authenticate like the REST API (``Authorization: Bearer …``) or, from the dashboard's pages, with
the session cookie. A refused handshake answers an HTTP error with the API's ``{code, message}``
body (401, 403, 422). Query: ``types`` (comma list, e.g. ``execution.transition,alert.changed``;
the types are ``core.events.EventType``), ``agent``, and ``after`` (``executions:1234,fleet:56``:
replay what came after, then go live). A token scoped to an agent receives that agent's events
only, never the fleet-wide ones.

Messages are JSON text frames with a ``kind``:

- ``hello``: ``{cursor, sources, role, scope}`` once, first;
- ``events``: ``{events: [envelope...], cursor}`` — everything new since the last message
  (envelope: ``type, source, seq, at, at_ms, agent, subject, data``, see ``core.events``);
- ``gap``: ``{reason, cursor}`` — events were dropped for this client (it fell behind or asked
  to resume too far back): re-read the state over REST, then keep listening;
- ``ping``: ``{at_ms}`` after a quiet spell, so proxies keep the connection and clients know it
  lives. A revoked token is noticed at the next ping and the socket closed with code 4401.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect

from shepherd.api.auth import Principal
from shepherd.api.context import ApiContext
from shepherd.api.errors import error_body, status_for
from shepherd.api.instants import to_iso
from shepherd.api.session_auth import connection_principal
from shepherd.core.events import Event
from shepherd.errors import ConfigError, NotFound, ShepherdError, StoreError
from shepherd.services.event_hub import (
    Batch,
    EventFilter,
    EventHub,
    Gap,
    Subscription,
    parse_resume,
)

router = APIRouter(tags=["events"])

# Quiet this long, a ping goes out (and the token is checked again): under common proxy timeouts.
KEEPALIVE_S = 25.0
CLOSE_UNAUTHENTICATED = 4401


@router.websocket("/api/events")
async def events(websocket: WebSocket) -> None:
    ctx = websocket.app.state.ctx
    assert isinstance(ctx, ApiContext)
    try:
        hub, principal, wanted, resume = await _handshake(ctx, websocket)
        sub = await hub.subscribe(wanted, resume)
    except ShepherdError as exc:  # refused, or a store that cannot answer (503)
        await _refuse(websocket, exc)
        return
    try:
        await websocket.accept()
        await websocket.send_text(json.dumps({
            "kind": "hello", "cursor": hub.cursor(), "sources": sorted(hub.source_names),
            "role": principal.role.value, "scope": principal.agent,
        }))
        await _pump(ctx, websocket, principal, sub)
    finally:
        hub.unsubscribe(sub)


async def _handshake(
    ctx: ApiContext, websocket: WebSocket
) -> tuple[EventHub, Principal, EventFilter, dict[str, int]]:
    hub = ctx.events
    if hub is None:
        raise NotFound("live events are not served by this process")
    principal = await connection_principal(ctx, websocket)
    params = websocket.query_params
    agent = params.get("agent") or None
    if agent is not None:
        principal.check_agent(agent)
    types = frozenset(t for t in (params.get("types") or "").split(",") if t) or None
    try:
        resume = parse_resume(params.get("after") or "", hub.source_names)
    except ValueError as exc:
        raise ConfigError(f"query.after: {exc}") from exc
    return hub, principal, EventFilter(principal.agent, agent, types), resume


async def _refuse(websocket: WebSocket, exc: ShepherdError) -> None:
    body = JSONResponse(error_body(exc.code, exc.message), status_code=status_for(exc))
    try:
        await websocket.send_denial_response(body)
    except RuntimeError:  # a server without the denial extension: say it in a close frame
        await websocket.close(code=1008, reason=exc.message[:120])


async def _pump(
    ctx: ApiContext, websocket: WebSocket, principal: Principal, sub: Subscription
) -> None:
    """Send until the client leaves; a receive task notices the leaving."""
    sender = asyncio.create_task(_send_loop(ctx, websocket, principal, sub))
    receiver = asyncio.create_task(_receive_until_closed(websocket))
    try:
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, receiver):
            task.cancel()
        for task in (sender, receiver):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task


async def _send_loop(
    ctx: ApiContext, websocket: WebSocket, principal: Principal, sub: Subscription
) -> None:
    while True:
        try:
            item = await asyncio.wait_for(sub.next(), KEEPALIVE_S)
        except TimeoutError:
            if not await _still_authorized(ctx, principal):
                await websocket.close(code=CLOSE_UNAUTHENTICATED, reason="token revoked")
                return
            await websocket.send_text(json.dumps({"kind": "ping", "at_ms": ctx.clock.now_ms()}))
            continue
        text = encode(item, sub.filter)
        if text is not None:
            await websocket.send_text(text)


async def _still_authorized(ctx: ApiContext, principal: Principal) -> bool:
    try:
        token = await ctx.db.tokens.get(principal.token_id)
    except NotFound:
        return False
    except StoreError:
        return True  # cannot tell now: a store outage must not disconnect every viewer
    return token.revoked_at_ms is None


async def _receive_until_closed(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


def encode(item: Batch | Gap, wanted: EventFilter) -> str | None:
    """The frame for one hub item, serialized once per batch and filter; None if nothing to say."""
    if isinstance(item, Gap):
        return json.dumps({"kind": "gap", "reason": item.reason, "cursor": dict(item.cursor)})

    def make() -> str | None:
        chosen = item.select(wanted)
        if not chosen:
            return None
        return json.dumps({"kind": "events", "events": [wire(e) for e in chosen],
                           "cursor": dict(item.cursor)})

    return item.memo(("json", wanted), make)


def wire(event: Event) -> dict[str, Any]:
    return {
        "type": event.type, "source": event.source, "seq": event.seq, "at": to_iso(event.at_ms),
        "at_ms": event.at_ms, "agent": event.agent, "subject": event.subject,
        "data": dict(event.data),
    }
