"""``/api/agents``: the fleet's agents with their live capacity use, backlog and circuit.

Reading needs viewer; creating, changing and deleting need admin (creating, an unscoped one).
Deleting an agent with work in flight answers 409: cancel or let it finish first.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from shepherd.api.auth import Admin, FleetAdmin, Viewer
from shepherd.api.bodies import AgentCreate, AgentPatch
from shepherd.api.context import ApiContext, Ctx
from shepherd.api.views import AgentView
from shepherd.core.ids import AgentName
from shepherd.core.models import Agent
from shepherd.services.circuits import reset_for_new_url

router = APIRouter(prefix="/api/agents", tags=["agents"])

# Body field -> store column, where the API (like the manifest) uses the shorter name.
_COLUMNS = {"max_parallel": "max_parallel_tasks", "timeout_s": "execution_timeout_s"}


async def agent_view(ctx: ApiContext, agent: Agent) -> AgentView:
    return AgentView.of(
        agent,
        slots_in_use=await ctx.redis.slots.count(agent.name),
        backlog=await ctx.db.executions.backlog_depth(agent.name),
        circuit=await ctx.redis.circuits.read(agent.name),
    )


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    return {_COLUMNS.get(k, k): v for k, v in fields.items()}


@router.get("", response_model=list[AgentView], summary="Agents, with slots in use and backlog")
async def list_agents(ctx: Ctx, principal: Viewer) -> list[AgentView]:
    agents = [a for a in await ctx.db.agents.list() if principal.sees(a.name)]
    return [await agent_view(ctx, a) for a in agents]


@router.get("/{name}", response_model=AgentView, summary="One agent")
async def get_agent(ctx: Ctx, principal: Viewer, name: str) -> AgentView:
    principal.check_agent(name)
    return await agent_view(ctx, await ctx.db.agents.get(AgentName(name)))


@router.post("", response_model=AgentView, status_code=status.HTTP_201_CREATED,
             summary="Add an agent")
async def create_agent(ctx: Ctx, principal: FleetAdmin, body: AgentCreate) -> AgentView:
    fields = _columns(body.model_dump(exclude={"name", "url", "command"}))
    agent = await ctx.db.agents.create(
        name=AgentName(body.name), url=body.url, command=body.command, actor=principal.name,
        **fields,
    )
    # A breaker state left under this name by an earlier agent says nothing about this one.
    await ctx.redis.circuits.clear(agent.name)
    return await agent_view(ctx, agent)


@router.patch("/{name}", response_model=AgentView, summary="Change an agent")
async def patch_agent(ctx: Ctx, principal: Admin, name: str, body: AgentPatch) -> AgentView:
    principal.check_agent(name)
    await ctx.db.agents.get(AgentName(name))
    changes = _columns(body.model_dump(exclude_unset=True))
    if changes:
        await ctx.db.agents.update(AgentName(name), actor=principal.name, **changes)
    if "url" in changes:
        await reset_for_new_url(ctx.db, ctx.redis.circuits, name, actor=principal.name,
                                now_ms=ctx.clock.now_ms())
    return await agent_view(ctx, await ctx.db.agents.get(AgentName(name)))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               summary="Delete an agent (409 while it has work in flight)")
async def delete_agent(ctx: Ctx, principal: Admin, name: str) -> Response:
    principal.check_agent(name)
    # The store refuses (409) while work is running or finalizing, atomically with the delete.
    await ctx.db.agents.delete(name, actor=principal.name, now_ms=ctx.clock.now_ms())
    # No work runs any more, so its Redis keys (stale slots, cursor, breaker, monitor lease) go
    # too: a deleted agent leaves nothing that references it (invariant L-03).
    await ctx.redis.slots.forget_agent(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
