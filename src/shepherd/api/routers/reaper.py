"""``GET /api/reaper``: what the reaper did in its last pass, and who finalizes what right now.

The last pass (when, whether it was the startup pass, how long, actions by tier, the rows it
deferred to a live finalizer and whose lease it saw) is the detail the reaper saved in Redis, so
any replica answers the same; the finalize leases held now are read from Redis at request time.
Viewer role; a scoped token sees only its agent's rows and leases (counts are fleet-wide and
name nothing; the faults, which name rows, are for fleet-wide tokens only).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from shepherd.api.auth import Principal, Viewer
from shepherd.api.context import Ctx
from shepherd.api.instants import to_iso

router = APIRouter(prefix="/api/reaper", tags=["reaper"])
NAME = "reaper"


class Deferred(BaseModel):
    execution_id: str
    agent: str
    owner: str | None  # the live finalizer whose lease the reaper saw
    reason: str


class LastPass(BaseModel):
    at: str | None
    at_ms: int
    startup: bool  # the pass a control plane runs before its loops start
    duration_ms: float
    finalizer_liveness: bool  # off: tier 2 ignored leases (unsafe)
    counts: dict[str, dict[str, int]]  # tier ("1", "2", "3") -> action -> rows or agents
    lost_race: int  # CASes another writer won first (nothing done)
    deferred: list[Deferred]
    faults: list[str]  # rows or agents whose judging or handling raised (fleet-wide tokens)


class FinalizeLease(BaseModel):
    execution_id: str
    agent: str | None
    owner: str
    ttl_ms: int


class Budget(BaseModel):
    fetch_s: float
    store_s: float
    ack_s: float
    total_s: float


class ReaperSettings(BaseModel):
    interval_s: float
    finalize_grace_s: float
    max_running_s: float | None  # None: each row's timeout + 2 x the finalize grace
    finalizer_liveness: bool
    finalize_lease_ttl_s: float
    completion_budget: Budget


class ReaperStatus(BaseModel):
    last_pass: LastPass | None
    finalize_leases: list[FinalizeLease]
    settings: ReaperSettings


@router.get("", response_model=ReaperStatus,
            summary="The reaper's last pass and the finalize leases held now")
async def reaper_status(ctx: Ctx, principal: Viewer) -> ReaperStatus:
    detail = await ctx.redis.reports.detail(NAME)
    s = ctx.settings
    budget = Budget(fetch_s=s.finalize_fetch_budget_s, store_s=s.finalize_store_budget_s,
                    ack_s=s.finalize_ack_budget_s,
                    total_s=s.finalize_fetch_budget_s + s.finalize_store_budget_s
                    + s.finalize_ack_budget_s)
    return ReaperStatus(
        last_pass=_last_pass(detail, principal) if detail else None,
        finalize_leases=await _leases(ctx, principal),
        settings=ReaperSettings(
            interval_s=s.reaper_interval_s, finalize_grace_s=s.reaper_finalize_grace_s,
            max_running_s=s.reaper_max_running_s, finalizer_liveness=s.reaper_finalizer_liveness,
            finalize_lease_ttl_s=s.finalize_lease_ttl_s, completion_budget=budget,
        ),
    )


async def _leases(ctx: Ctx, principal: Principal) -> list[FinalizeLease]:
    keys = ctx.redis.keys
    found = []
    for held in await ctx.redis.leases.held(keys.finalize_lease_pattern()):
        execution_id = keys.parse_finalize_lease(held.key)
        if execution_id is None:
            continue
        row = await ctx.db.executions.find(execution_id)
        agent = row.agent if row else None
        if principal.agent is None or agent == principal.agent:
            found.append(FinalizeLease(execution_id=execution_id, agent=agent,
                                       owner=held.owner, ttl_ms=held.ttl_ms))
    return found


def _last_pass(detail: dict[str, Any], principal: Principal) -> LastPass | None:
    try:
        return LastPass(
            at=to_iso(detail["at_ms"]), at_ms=detail["at_ms"], startup=detail["startup"],
            duration_ms=detail["duration_ms"], finalizer_liveness=detail["finalizer_liveness"],
            counts=detail.get("counts", {}), lost_race=detail.get("lost_race", 0),
            deferred=[Deferred(**d) for d in detail.get("deferred", [])
                      if principal.sees(d["agent"])],
            faults=list(detail.get("faults", [])) if principal.agent is None else [],
        )
    except (KeyError, TypeError, ValueError):
        return None  # written by another version: show nothing rather than fail
