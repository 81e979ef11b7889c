"""``/api/outbox``: outbound deliveries (completion webhooks, alerts) and their destinations.

Viewer role. Undelivered and given-up deliveries stay visible here with their last error; a
destination that answered "gone" shows as ``fatal``. A token scoped to an agent sees only that
agent's completion webhooks. No URL is ever part of a response.
"""

from __future__ import annotations

from fastapi import APIRouter, Query

from shepherd.api.auth import Viewer
from shepherd.api.context import Ctx
from shepherd.api.outbox_views import DeliveryView, DestinationView
from shepherd.controllers.webhook import completion_destination
from shepherd.core.outbox import DeliveryStatus

router = APIRouter(prefix="/api/outbox", tags=["outbox"])


@router.get("", response_model=list[DeliveryView], summary="Deliveries, newest first")
async def list_deliveries(
    ctx: Ctx, principal: Viewer,
    status: DeliveryStatus | None = None,
    topic: str | None = Query(default=None, description="completion or alert"),
    limit: int = Query(default=50, ge=1, le=500),
) -> list[DeliveryView]:
    scope = completion_destination(principal.agent) if principal.agent else None
    rows = await ctx.db.outbox.list(topic=topic, statuses=[status] if status else (),
                                    destination=scope, limit=limit)
    return [DeliveryView.of(r) for r in rows]


@router.get("/destinations", response_model=list[DestinationView],
            summary="Destinations: ok, blocked (rate-limited) or fatal (stopped)")
async def list_destinations(ctx: Ctx, principal: Viewer) -> list[DestinationView]:
    now_ms = ctx.clock.now_ms()
    scope = completion_destination(principal.agent) if principal.agent else None
    return [DestinationView.of(row, now_ms) for row in await ctx.db.outbox.destinations()
            if scope is None or row["destination"] == scope]
