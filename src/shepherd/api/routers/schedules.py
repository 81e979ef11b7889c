"""``/api/schedules``: cron schedules of the fleet's agents, and running one on demand.

Reading needs viewer; everything else operator. A scoped token sees its agent's schedules only.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from shepherd.api.auth import Operator, Principal, Viewer
from shepherd.api.bodies import ScheduleCreate, SchedulePatch
from shepherd.api.context import Ctx
from shepherd.api.views import ExecutionView, ScheduleView
from shepherd.core.ids import AgentName, ScheduleId
from shepherd.core.models import Schedule
from shepherd.core.status import ExecutionStatus
from shepherd.errors import ScheduleNotFound
from shepherd.services import schedules as service

router = APIRouter(prefix="/api/schedules", tags=["schedules"])


async def visible_schedule(ctx: Ctx, principal: Principal, schedule_id: str) -> Schedule:
    """The schedule, or 404 when it does not exist or lies outside the token's scope."""
    schedule = await ctx.db.schedules.find(ScheduleId(schedule_id))
    if schedule is None or not principal.sees(schedule.agent):
        raise ScheduleNotFound(f"no schedule {schedule_id!r}")
    return schedule


@router.get("", response_model=list[ScheduleView], summary="Schedules, optionally of one agent")
async def list_schedules(
    ctx: Ctx, principal: Viewer, agent: str | None = None
) -> list[ScheduleView]:
    if agent is not None:
        principal.check_agent(agent)
    scope = agent or principal.agent
    rows = await ctx.db.schedules.list(agent=AgentName(scope) if scope else None)
    return [ScheduleView.of(s) for s in rows]


@router.get("/{schedule_id}", response_model=ScheduleView, summary="One schedule")
async def get_schedule(ctx: Ctx, principal: Viewer, schedule_id: str) -> ScheduleView:
    return ScheduleView.of(await visible_schedule(ctx, principal, schedule_id))


@router.post("", response_model=ScheduleView, status_code=status.HTTP_201_CREATED,
             summary="Add a schedule (armed for its next tick)")
async def create_schedule(ctx: Ctx, principal: Operator, body: ScheduleCreate) -> ScheduleView:
    principal.check_agent(body.agent)
    fields = service.ScheduleFields(**body.model_dump() | {"agent": AgentName(body.agent)})
    return ScheduleView.of(await service.create_schedule(ctx.db, fields, ctx.clock.now_ms()))


@router.patch("/{schedule_id}", response_model=ScheduleView, summary="Change a schedule")
async def patch_schedule(
    ctx: Ctx, principal: Operator, schedule_id: str, body: SchedulePatch
) -> ScheduleView:
    schedule = await visible_schedule(ctx, principal, schedule_id)
    changes = body.model_dump(exclude_unset=True)
    updated = await service.update_schedule(ctx.db, schedule.id, changes, ctx.clock.now_ms())
    return ScheduleView.of(updated)


@router.delete("/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               summary="Delete a schedule (its past executions stay)")
async def delete_schedule(ctx: Ctx, principal: Operator, schedule_id: str) -> Response:
    schedule = await visible_schedule(ctx, principal, schedule_id)
    await ctx.db.schedules.delete(schedule.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{schedule_id}/enable", response_model=ScheduleView,
             summary="Enable a schedule (armed for its next tick after now)")
async def enable_schedule(ctx: Ctx, principal: Operator, schedule_id: str) -> ScheduleView:
    return await _set_enabled(ctx, principal, schedule_id, True)


@router.post("/{schedule_id}/disable", response_model=ScheduleView, summary="Disable a schedule")
async def disable_schedule(ctx: Ctx, principal: Operator, schedule_id: str) -> ScheduleView:
    return await _set_enabled(ctx, principal, schedule_id, False)


async def _set_enabled(
    ctx: Ctx, principal: Principal, schedule_id: str, enabled: bool
) -> ScheduleView:
    schedule = await visible_schedule(ctx, principal, schedule_id)
    updated = await service.update_schedule(
        ctx.db, schedule.id, {"enabled": enabled}, ctx.clock.now_ms()
    )
    return ScheduleView.of(updated)


@router.post("/{schedule_id}/run", response_model=ExecutionView,
             status_code=status.HTTP_201_CREATED,
             summary="Run the schedule now (queued, or skipped with its reason)")
async def run_schedule(ctx: Ctx, principal: Operator, schedule_id: str) -> ExecutionView:
    schedule = await visible_schedule(ctx, principal, schedule_id)
    row = await service.run_now(ctx.db, schedule, principal.name)
    if row.status is ExecutionStatus.QUEUED:
        ctx.dispatch_wakeup.poke()
    return ExecutionView.of(row)
