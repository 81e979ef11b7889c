"""Circuit breakers over the API: one agent's circuit with its recent state changes, the fleet's
circuits (filterable by state: ``?state=dormant``), and the operator's reset.

Reading needs viewer; resetting needs admin. A reset closes the circuit whatever its state and is
recorded as an event naming the token that did it.
"""

from __future__ import annotations

from fastapi import APIRouter

from shepherd.api.auth import Admin, Viewer
from shepherd.api.context import Ctx
from shepherd.api.views import CircuitDetail, CircuitView
from shepherd.core.circuit import CircuitState
from shepherd.services.circuits import list_circuits, reset_circuit

router = APIRouter(tags=["circuits"])


@router.get("/api/circuits", response_model=list[CircuitView],
            summary="The fleet's circuit breakers, optionally only those in one state")
async def fleet_circuits(
    ctx: Ctx, principal: Viewer, state: CircuitState | None = None
) -> list[CircuitView]:
    found = await list_circuits(ctx.db, ctx.redis.circuits, state)
    return [CircuitView.of(c) for c in found if principal.sees(c.agent)]


@router.get("/api/agents/{name}/circuit", response_model=CircuitDetail,
            summary="An agent's circuit breaker and its recent state changes (newest first)")
async def agent_circuit(ctx: Ctx, principal: Viewer, name: str) -> CircuitDetail:
    principal.check_agent(name)
    await ctx.db.agents.get(name)
    circuit = await ctx.redis.circuits.read(name)
    return CircuitDetail.with_events(circuit, await ctx.redis.circuits.events(name))


@router.post("/api/agents/{name}/circuit/reset", response_model=CircuitView,
             summary="Close an agent's circuit now, whatever its state (admin)")
async def reset_agent_circuit(ctx: Ctx, principal: Admin, name: str) -> CircuitView:
    principal.check_agent(name)
    await reset_circuit(ctx.db, ctx.redis.circuits, name, actor=f"token:{principal.name}",
                        now_ms=ctx.clock.now_ms(), telemetry=ctx.telemetry)
    return CircuitView.of(await ctx.redis.circuits.read(name))
