"""The executions pages: the list (filters, cursor paging; rows change status live), one
execution (fields, event timeline, output tail followed while it runs) and its actions.

Reads and actions go through the REST API's own route functions, so a page shows exactly what
``GET /api/executions`` would, and cancel or retry from a page is the same operation as from the
CLI. Fragments for the page script: ``?fragment=rows`` (the list's rows), ``?fragment=live``
(an execution's fields and timeline) and ``/executions/{id}/output`` (its output tail).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from shepherd.api.context import Ctx
from shepherd.api.routers.executions import (
    CURSOR_PATTERN,
    cancel_execution,
    get_execution,
    list_executions,
    retry_execution,
    visible_execution,
)
from shepherd.core.status import ExecutionStatus
from shepherd.services.output import read_output
from shepherd.web.rendering import render
from shepherd.web.routing import FormOperator, PageRoute, PageViewer

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZE = 50
# The time filter's choices: label -> how far back, in ms.
WINDOWS = {"15m": 15 * 60_000, "1h": 3_600_000, "6h": 6 * 3_600_000, "24h": 86_400_000,
           "7d": 7 * 86_400_000}


@router.get("/executions")
async def executions_page(
    request: Request, ctx: Ctx, viewer: PageViewer,
    status: ExecutionStatus | None = None,
    agent: str | None = None,
    schedule: str | None = None,
    window: Annotated[str | None, Query(pattern="^(15m|1h|6h|24h|7d)$")] = None,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
    fragment: str | None = None,
) -> Response:
    agent, schedule = agent or None, schedule or None
    since = ctx.clock.now_ms() - WINDOWS[window] if window else None
    page = await list_executions(
        ctx, viewer.principal, status_=status, agent=agent, schedule_id=schedule, since=since,
        until=None, limit=PAGE_SIZE, cursor=cursor,
    )
    filters = {"status": status.value if status else "", "agent": agent or "",
               "schedule": schedule or "", "window": window or ""}
    context = {"viewer": viewer, "page": "executions", "rows": page.items,
               "next_cursor": page.next_cursor, "cursor": cursor, "filters": filters}
    if fragment == "rows":
        return render(request, "executions_rows.html", **context)
    scope = viewer.principal.agent
    agents = [a.name for a in await ctx.db.agents.list() if scope is None or a.name == scope]
    choices = {  # filter name -> (value, text) of each option
        "status": [(s.value, s.value) for s in ExecutionStatus],
        "agent": [(a, a) for a in agents],
        "schedule": [(s.id, s.name or s.id) for s in await ctx.db.schedules.list(agent=scope)],
        "window": [(w, f"last {w}") for w in WINDOWS],
    }
    return render(request, "executions.html", **context, choices=choices)


@router.get("/executions/{execution_id}")
async def execution_page(
    request: Request, ctx: Ctx, viewer: PageViewer, execution_id: str,
    fragment: str | None = None,
) -> Response:
    detail = await get_execution(ctx, viewer.principal, execution_id)
    template = "execution_live.html" if fragment == "live" else "execution.html"
    tail = None
    if fragment != "live":
        row = await visible_execution(ctx, viewer.principal, execution_id)
        tail = await read_output(ctx.db, ctx.directory, row)
    return render(request, template, viewer=viewer, page="executions", e=detail, tail=tail,
                  now_ms=ctx.clock.now_ms())


@router.get("/executions/{execution_id}/output")
async def execution_output(
    request: Request, ctx: Ctx, viewer: PageViewer, execution_id: str
) -> Response:
    row = await visible_execution(ctx, viewer.principal, execution_id)
    tail = await read_output(ctx.db, ctx.directory, row)
    return render(request, "execution_output.html", e=row, tail=tail)


@router.post("/executions/{execution_id}/cancel")
async def cancel(ctx: Ctx, viewer: FormOperator, execution_id: str) -> Response:
    await cancel_execution(ctx, viewer.principal, execution_id)
    return RedirectResponse(f"/executions/{execution_id}?notice=cancelled", status_code=303)


@router.post("/executions/{execution_id}/retry")
async def retry(ctx: Ctx, viewer: FormOperator, execution_id: str) -> Response:
    again = await retry_execution(ctx, viewer.principal, execution_id)
    return RedirectResponse(f"/executions/{again.id}?notice=retried", status_code=303)
