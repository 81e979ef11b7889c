"""``GET /api/watchdog``: what the watchdog did in its last cycle, and which agents are unhealthy.

The last cycle (when, scope, duration, counts by action, the agents it skipped and why) is the
detail the watchdog saved in Redis, so any replica answers the same; the agents' outage clocks and
fences are read from Redis as they are now. Viewer role; a scoped token sees only its agent in
the lists (counts are fleet-wide and name nothing).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from shepherd.api.auth import Principal, Viewer
from shepherd.api.context import Ctx
from shepherd.api.instants import to_iso

router = APIRouter(prefix="/api/watchdog", tags=["watchdog"])
NAME = "watchdog"


class SkippedAgent(BaseModel):
    agent: str
    reach: str  # unreachable | unusable | no_runtime
    reason: str
    unreachable_since: str | None
    unreachable_since_ms: int | None


class LastCycle(BaseModel):
    at: str | None
    at_ms: int
    scope: str  # full | targeted
    duration_ms: float
    systemic: bool  # most of the fleet unreachable at once: nothing was recovered
    counts: dict[str, int]
    skipped: list[SkippedAgent]
    requests: list[str]  # agents whose reconcile request the cycle consumed


class AgentHealthView(BaseModel):
    name: str
    unreachable_since: str | None
    unreachable_since_ms: int | None
    fenced: bool  # declared lost: nothing is dispatched to it until its registry is reconciled
    lost_at: str | None
    lost_at_ms: int | None


class WatchdogSettings(BaseModel):
    interval_s: float
    agent_lost_after_s: float
    dispatch_grace_s: float
    timeout_slack_s: float
    probe_timeout_s: float
    handover_grace_s: float


class WatchdogStatus(BaseModel):
    last_cycle: LastCycle | None
    unhealthy_agents: list[AgentHealthView]
    settings: WatchdogSettings


@router.get("", response_model=WatchdogStatus, summary="The watchdog's last cycle and agent health")
async def watchdog_status(ctx: Ctx, principal: Viewer) -> WatchdogStatus:
    detail = await ctx.redis.reports.detail(NAME)
    names = [a.name for a in await ctx.db.agents.list() if principal.sees(a.name)]
    health = await ctx.redis.health.read(names)
    unhealthy = [
        AgentHealthView(name=name, unreachable_since=to_iso(h.unreachable_since_ms),
                        unreachable_since_ms=h.unreachable_since_ms, fenced=h.fenced,
                        lost_at=to_iso(h.lost_at_ms), lost_at_ms=h.lost_at_ms)
        for name, h in sorted(health.items()) if h.fenced or h.unreachable_since_ms is not None
    ]
    s = ctx.settings
    return WatchdogStatus(
        last_cycle=_last_cycle(detail, principal) if detail else None,
        unhealthy_agents=unhealthy,
        settings=WatchdogSettings(
            interval_s=s.watchdog_interval_s, agent_lost_after_s=s.watchdog_agent_lost_after_s,
            dispatch_grace_s=s.watchdog_dispatch_grace_s,
            timeout_slack_s=s.watchdog_timeout_slack_s,
            probe_timeout_s=s.watchdog_probe_timeout_s,
            handover_grace_s=s.watchdog_handover_grace_s,
        ),
    )


def _last_cycle(detail: dict[str, Any], principal: Principal) -> LastCycle | None:
    try:
        skipped = [
            SkippedAgent(agent=s["agent"], reach=s["reach"], reason=s["reason"],
                         unreachable_since=to_iso(s.get("unreachable_since_ms")),
                         unreachable_since_ms=s.get("unreachable_since_ms"))
            for s in detail.get("skipped", []) if principal.sees(s["agent"])
        ]
        return LastCycle(
            at=to_iso(detail["at_ms"]), at_ms=detail["at_ms"], scope=detail["scope"],
            duration_ms=detail["duration_ms"], systemic=detail["systemic"],
            counts=detail.get("counts", {}), skipped=skipped,
            requests=[a for a in detail.get("requests", []) if principal.sees(a)],
        )
    except (KeyError, TypeError, ValueError):
        return None  # written by another version: show nothing rather than fail
