"""``/api/executions``: list (filters, cursor paging), show with timeline, submit, cancel, retry.

A scoped token sees its agent's executions only; another agent's execution answers 404.
Paging is newest first; ``next_cursor`` is opaque to clients and ``null`` on the last page.
Every route that names an execution also accepts a unique prefix of its id (at least
``MIN_PREFIX`` characters); a prefix that matches several answers 422 naming some of them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from shepherd.api.auth import Operator, Principal, Viewer
from shepherd.api.bodies import ExecutionCreate
from shepherd.api.context import Ctx
from shepherd.api.instants import InstantQuery
from shepherd.api.views import ExecutionDetail, ExecutionOutputView, ExecutionPage, ExecutionView
from shepherd.core.ids import AgentName, ExecutionId, ScheduleId
from shepherd.core.models import Execution, Trigger
from shepherd.core.status import ExecutionStatus
from shepherd.errors import AmbiguousId, ExecutionNotFound
from shepherd.services import executions as service
from shepherd.services.output import read_output

router = APIRouter(prefix="/api/executions", tags=["executions"])

DEFAULT_PAGE = 50
MAX_PAGE = 500
# Execution ids are 13 digits of epoch ms and 10 hex chars; a cursor is the last id of a page.
CURSOR_PATTERN = r"^[0-9]{13}[0-9a-f]{10}$"
ID_LENGTH = 23
# Shorter prefixes match whole days of executions; they would only ever be ambiguous.
MIN_PREFIX = 4


async def visible_execution(ctx: Ctx, principal: Principal, execution_id: str) -> Execution:
    """The execution named by its id or a unique prefix of it; 404 when none is visible."""
    row = await ctx.db.executions.find(ExecutionId(execution_id))
    if row is None and MIN_PREFIX <= len(execution_id) < ID_LENGTH:
        scope = principal.agent
        found = await ctx.db.executions.find_by_prefix(execution_id, agent=scope, limit=4)
        if len(found) > 1:
            shown = ", ".join(r.id for r in found[:3])
            raise AmbiguousId(f"id prefix {execution_id!r} matches more than one execution "
                              f"({shown}, ...); give more characters")
        row = found[0] if found else None
    if row is None or not principal.sees(row.agent):
        raise ExecutionNotFound(f"no execution {execution_id!r}")
    return row


@router.get("", response_model=ExecutionPage, summary="Executions, newest first")
async def list_executions(
    ctx: Ctx,
    principal: Viewer,
    status_: Annotated[ExecutionStatus | None, Query(alias="status")] = None,
    agent: str | None = None,
    schedule_id: str | None = None,
    since: Annotated[InstantQuery | None, Query(description="Created at or after.")] = None,
    until: Annotated[InstantQuery | None, Query(description="Created before.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
    agent_generation: Annotated[int | None, Query(
        ge=0, description="With agent: an earlier incarnation of that name (default: current)."
    )] = None,
) -> ExecutionPage:
    if agent is not None:
        principal.check_agent(agent)
    scope = agent or principal.agent
    rows = await ctx.db.executions.list(
        status=status_, agent=AgentName(scope) if scope else None,
        schedule_id=ScheduleId(schedule_id) if schedule_id else None,
        since_ms=since, until_ms=until,
        before_id=ExecutionId(cursor) if cursor else None, limit=limit + 1,
        agent_generation=agent_generation,
    )
    page = rows[:limit]
    next_cursor = page[-1].id if len(rows) > limit else None
    return ExecutionPage(items=[ExecutionView.of(r) for r in page], next_cursor=next_cursor)


@router.get("/{execution_id}", response_model=ExecutionDetail, summary="One execution")
async def get_execution(ctx: Ctx, principal: Viewer, execution_id: str) -> ExecutionDetail:
    row = await visible_execution(ctx, principal, execution_id)
    return ExecutionDetail.with_events(row, list(await ctx.db.executions.events(row.id)))


@router.get("/{execution_id}/output", response_model=ExecutionOutputView,
            summary="What the child printed: live while it runs, the stored tail after")
async def get_output(ctx: Ctx, principal: Viewer, execution_id: str) -> ExecutionOutputView:
    row = await visible_execution(ctx, principal, execution_id)
    return ExecutionOutputView.of(await read_output(ctx.db, ctx.directory, row))


@router.post(
    "", response_model=ExecutionView, status_code=status.HTTP_201_CREATED,
    summary="Submit work: queued, or skipped with its reason",
)
async def create_execution(ctx: Ctx, principal: Operator, body: ExecutionCreate) -> ExecutionView:
    principal.check_agent(body.agent)
    row = await service.submit(
        ctx.db, agent=body.agent, input=body.input, trigger=Trigger.API,
        created_by=principal.name, timeout_s=body.timeout_s,
    )
    if row.status is ExecutionStatus.QUEUED:
        ctx.dispatch_wakeup.poke()
    return ExecutionView.of(row)


@router.post(
    "/{execution_id}/cancel", response_model=ExecutionView,
    summary="Cancel a queued or running execution (409 with its status otherwise)",
)
async def cancel_execution(ctx: Ctx, principal: Operator, execution_id: str) -> ExecutionView:
    row = await visible_execution(ctx, principal, execution_id)
    cancelled = await service.cancel(
        ctx.db, ctx.redis, ctx.directory, row.id, principal.name, ctx.clock.now_ms()
    )
    ctx.dispatch_wakeup.poke()  # a freed slot may let queued work start
    return ExecutionView.of(cancelled)


@router.post(
    "/{execution_id}/retry", response_model=ExecutionView, status_code=status.HTTP_201_CREATED,
    summary="Queue a new attempt of a failed or cancelled execution",
)
async def retry_execution(ctx: Ctx, principal: Operator, execution_id: str) -> ExecutionView:
    row = await visible_execution(ctx, principal, execution_id)
    again = await service.retry(ctx.db, row.id, principal.name)
    if again.status is ExecutionStatus.QUEUED:
        ctx.dispatch_wakeup.poke()
    return ExecutionView.of(again)
