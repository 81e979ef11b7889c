"""The health page: a list of sections, each a small template and the provider of its data.

A feature adds its section by writing a template under ``templates/health/`` and a provider,
and listing a ``HealthSection`` in ``DEFAULT_SECTIONS`` (or passing it to ``install_dashboard``).
A provider returns the template's context, or None when its feature is off on this control plane
(the section is then not shown at all: no placeholder for what does not run). Sections shown
today: controllers (every loop's last pass, as any replica sees it, and its leader), the stores,
live events, open alerts and the canary's last cycle (the last two for fleet-wide tokens only).
Watchdog and reaper cycles appear among the controllers. A section naming ``live_types`` (the
canary's and the alerts') is also re-rendered alone (``?fragment=section&section=NAME``) as soon
as a live event of those types arrives, between the page's periodic refreshes.

Must not: read a store directly (providers go through the stores' readers and services).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shepherd.api.context import ApiContext, Ctx
from shepherd.canary.invariants import REGISTRY, UNCHECKED
from shepherd.core.alerting import AlertPhase
from shepherd.errors import NotFound, StoreError
from shepherd.stores.redis.instance import read_instance_id
from shepherd.web.rendering import render
from shepherd.web.routing import PageRoute, PageViewer, Viewer

Provider = Callable[[ApiContext, Viewer], Awaitable[Mapping[str, Any] | None]]


@dataclass(frozen=True, slots=True)
class HealthSection:
    name: str  # the section's id in the page
    title: str
    template: str  # under templates/, e.g. "health/controllers.html"
    provide: Provider
    # Live event types (``dashboard.js`` tokens) that re-render this section at once.
    live_types: str = ""


@dataclass(frozen=True, slots=True)
class RenderedSection:
    section: HealthSection
    context: Mapping[str, Any]


async def _controllers(ctx: ApiContext, viewer: Viewer) -> Mapping[str, Any]:
    local = ctx.controller_ticks()
    statuses = await ctx.redis.reports.read(sorted(local))
    return {"controllers": statuses, "local_ticks": local, "now_ms": ctx.clock.now_ms()}


async def _stores(ctx: ApiContext, viewer: Viewer) -> Mapping[str, Any]:
    checks: dict[str, str] = {}
    redis_instance: str | None = None
    try:
        await ctx.db.ping()
        checks["SQL"] = "ok"
    except StoreError as exc:
        checks["SQL"] = exc.message
    try:
        redis_instance = await read_instance_id(ctx.redis.client, ctx.redis.keys)
        checks["Redis"] = "ok"
    except StoreError as exc:
        checks["Redis"] = exc.message
    return {
        "checks": checks, "dialect": ctx.db.engine.dialect.name,
        "sql_instance": ctx.db.instance_id, "redis_instance": redis_instance,
    }


async def _live_events(ctx: ApiContext, viewer: Viewer) -> Mapping[str, Any] | None:
    hub = ctx.events
    if hub is None:
        return None
    return {"subscribers": hub.subscribers, "cursor": hub.cursor(),
            "sources": sorted(hub.source_names)}


async def _alerts(ctx: ApiContext, viewer: Viewer) -> Mapping[str, Any] | None:
    """Open incidents, fleet-wide tokens only (an incident may name any agent)."""
    if ctx.alerts is None or viewer.principal.agent is not None:
        return None
    firing = await ctx.db.alerts.list(AlertPhase.FIRING)
    return {"firing": firing, "sinks": [sink.name for sink in ctx.alerts.sinks],
            "now_ms": ctx.clock.now_ms()}


async def _canary(ctx: ApiContext, viewer: Viewer) -> Mapping[str, Any] | None:
    """The canary's last cycle as this replica ran it, fleet-wide tokens only."""
    if ctx.canary is None or viewer.principal.agent is not None:
        return None
    last = ctx.canary.last
    found: dict[str, list[str]] = {}
    for v in last.violations if last else ():
        found.setdefault(v.invariant_id, []).append(v.message)
    board = [{"id": i.id, "title": i.title, "severity": i.severity.value,
              "checked": i.id not in UNCHECKED, "state": ctx.canary.board.get(i.id),
              "found": found.get(i.id, [])}
             for i in sorted(REGISTRY.values(), key=lambda i: i.id)]
    return {"enabled": ctx.settings.canary_enabled, "last": last, "board": board,
            "now_ms": ctx.clock.now_ms()}


DEFAULT_SECTIONS: tuple[HealthSection, ...] = (
    HealthSection("controllers", "Controllers", "health/controllers.html", _controllers),
    HealthSection("stores", "Stores", "health/stores.html", _stores),
    HealthSection("live-events", "Live events", "health/live_events.html", _live_events),
    HealthSection("alerts", "Open alerts", "health/alerts.html", _alerts, "alert.changed"),
    HealthSection("canary", "Canary", "health/canary.html", _canary, "canary.changed"),
)


async def render_sections(
    ctx: ApiContext, viewer: Viewer, sections: Sequence[HealthSection]
) -> list[RenderedSection]:
    rendered = []
    for section in sections:
        context = await section.provide(ctx, viewer)
        if context is not None:
            rendered.append(RenderedSection(section, context))
    return rendered


router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/health")
async def health_page(
    request: Request, ctx: Ctx, viewer: PageViewer, fragment: str | None = None,
    section: str | None = None,
) -> Response:
    sections: Sequence[HealthSection] = request.app.state.health_sections
    if fragment == "section":
        return await _one_section(request, ctx, viewer, [s for s in sections if s.name == section])
    rendered = await render_sections(ctx, viewer, sections)
    template = "health_live.html" if fragment == "live" else "health.html"
    return render(request, template, viewer=viewer, page="health", sections=rendered,
                  now_ms=ctx.clock.now_ms())


async def _one_section(
    request: Request, ctx: ApiContext, viewer: Viewer, chosen: Sequence[HealthSection]
) -> Response:
    """One section alone; 404 when there is none by that name or it is not shown here."""
    rendered = await render_sections(ctx, viewer, chosen)
    if not rendered:
        raise NotFound("no such health section on this control plane")
    return render(request, "health_section.html", viewer=viewer, page="health",
                  rendered=rendered[0], now_ms=ctx.clock.now_ms())
