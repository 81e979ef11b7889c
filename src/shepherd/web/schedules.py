"""The schedules page: each schedule's next run, its last run and that run's status, and, for
operators, enable / disable / run now.

Actions go through the REST API's route functions (the same checks, the same re-arming of the
next tick). ``?fragment=live`` answers the table alone; the page script fetches it when an event
concerns one of its schedules.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from shepherd.api.context import Ctx
from shepherd.api.routers.schedules import disable_schedule, enable_schedule, run_schedule
from shepherd.services.overview import schedule_overview
from shepherd.web.rendering import render
from shepherd.web.routing import FormOperator, PageRoute, PageViewer

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/schedules")
async def schedules_page(
    request: Request, ctx: Ctx, viewer: PageViewer, fragment: str | None = None
) -> Response:
    rows = await schedule_overview(ctx.db, scope=viewer.principal.agent)
    template = "schedules_live.html" if fragment == "live" else "schedules.html"
    return render(request, template, viewer=viewer, page="schedules", rows=rows,
                  now_ms=ctx.clock.now_ms())


@router.post("/schedules/{schedule_id}/enable")
async def enable(ctx: Ctx, viewer: FormOperator, schedule_id: str) -> Response:
    await enable_schedule(ctx, viewer.principal, schedule_id)
    return RedirectResponse("/schedules?notice=enabled", status_code=303)


@router.post("/schedules/{schedule_id}/disable")
async def disable(ctx: Ctx, viewer: FormOperator, schedule_id: str) -> Response:
    await disable_schedule(ctx, viewer.principal, schedule_id)
    return RedirectResponse("/schedules?notice=disabled", status_code=303)


@router.post("/schedules/{schedule_id}/run")
async def run_now(ctx: Ctx, viewer: FormOperator, schedule_id: str) -> Response:
    created = await run_schedule(ctx, viewer.principal, schedule_id)
    notice = "run-queued" if created.status == "queued" else "run-skipped"
    return RedirectResponse(f"/schedules?notice={notice}", status_code=303)
