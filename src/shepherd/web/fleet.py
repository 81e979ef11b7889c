"""The fleet page (``/``): every agent's state, slots, backlog, last seen and boot time, the
fleet's totals and the last hour's chart; and starting a run (``POST /runs``) for operators.

``?fragment=live`` answers the live region alone: the page script fetches it when executions
move or agents come and go (at most once a second) and every few seconds for the "last seen"
column. ``?fragment=agent&agent=NAME`` answers one agent's row, which the script fetches when
that agent, its circuit or a recovery of it changes. The data comes from
``services.overview`` in a fixed number of store round trips, so the page costs the same with
five agents or a hundred.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from shepherd.api.bodies import ExecutionCreate
from shepherd.api.context import Ctx
from shepherd.api.errors import describe_request_errors
from shepherd.api.routers.executions import create_execution
from shepherd.core.presence import silent_after_ms
from shepherd.errors import ConfigError
from shepherd.services.overview import agent_overview, fleet_overview
from shepherd.web.chart import throughput_chart
from shepherd.web.rendering import render
from shepherd.web.routing import FormOperator, PageRoute, PageViewer, Viewer

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/")
async def fleet_page(
    request: Request, ctx: Ctx, viewer: PageViewer, fragment: str | None = None,
    agent: str | None = None,
) -> Response:
    silent_ms = silent_after_ms(ctx.settings.monitor_poll_wait_s)
    if fragment == "agent":
        return await _agent_row(request, ctx, viewer, agent or "", silent_ms)
    overview = await fleet_overview(
        ctx.db, ctx.redis, now_ms=ctx.clock.now_ms(), silent_after_ms=silent_ms,
        scope=viewer.principal.agent,
    )
    template = "fleet_live.html" if fragment == "live" else "fleet.html"
    return render(request, template, viewer=viewer, page="fleet", overview=overview,
                  chart=throughput_chart(overview.minutes))


async def _agent_row(
    request: Request, ctx: Ctx, viewer: Viewer, name: str, silent_ms: int
) -> Response:
    viewer.principal.check_agent(name)
    now_ms = ctx.clock.now_ms()
    row = await agent_overview(ctx.db, ctx.redis, name, now_ms=now_ms, silent_after_ms=silent_ms)
    return render(request, "fleet_agent_row.html", viewer=viewer, page="fleet", o=row,
                  now_ms=now_ms)


@router.post("/runs")
async def start_run(
    ctx: Ctx, viewer: FormOperator, agent: Annotated[str, Form()],
    input: Annotated[str, Form()] = "",
) -> Response:
    try:
        body = ExecutionCreate(agent=agent, input=input)
    except ValidationError as exc:
        raise ConfigError(describe_request_errors(exc.errors())) from exc
    created = await create_execution(ctx, viewer.principal, body)
    return RedirectResponse(f"/executions/{created.id}", status_code=303)
