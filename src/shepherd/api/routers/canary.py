"""``/api/canary``: the invariant catalog, what the canary found, its status, a cycle on demand.

Admin only (fleet-wide tokens): violations name executions and agents across the fleet. A cycle
on demand runs even while the periodic loop is off (``SHEPHERD_CANARY_ENABLED``); an unknown
invariant id is a 422; one asked while another runs waits for it, and is a 409 only when that one
runs for more than ``EXCLUSIVE_WAIT_S``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from shepherd.api.auth import FleetAdmin
from shepherd.api.context import ApiContext, Ctx
from shepherd.api.instants import to_iso
from shepherd.canary.invariants import REGISTRY, UNCHECKED, Tier
from shepherd.canary.selftest import Selftest
from shepherd.canary.service import CanaryService, CycleResult
from shepherd.core.signals import Severity
from shepherd.errors import ConfigError, NotFound
from shepherd.stores.redis.canary_probes import CanaryProbes
from shepherd.stores.sql.canary_probes import SqlCanaryProbes
from shepherd.stores.sql.violations import StoredViolation, ViolationFilter

router = APIRouter(prefix="/api/canary", tags=["canary"])
# A cycle older than three intervals means the loop stopped (or another replica holds it).
STALE_AFTER_INTERVALS = 3
MAX_ID = 2**31 - 1  # the id column's range on every backend
MAX_MS = 2**53  # far beyond any instant, and exact in every JSON client


class InvariantView(BaseModel):
    id: str
    title: str
    tier: str
    severity: str
    dwell_s: float
    runbook: str
    checked: bool  # False: needs what the control plane cannot see (reason in ``runbook``)


class ViolationView(BaseModel):
    id: int | None = None
    invariant_id: str
    entity: str
    tier: str
    severity: str
    message: str
    observed: dict[str, Any]
    cycle_at: str | None = None
    cycle_at_ms: int | None = None


class CycleView(BaseModel):
    cycle_at: str | None
    cycle_at_ms: int
    duration_ms: float
    checked: list[str]
    violations: list[ViolationView]
    transitions: list[str]  # went green -> red: alerted
    recovered: list[str]
    sources_unavailable: list[str]
    failed: dict[str, str]  # checks that raised


class StatusView(BaseModel):
    enabled: bool
    interval_s: float
    healthy: bool  # enabled, and a cycle within three intervals
    stale: bool
    last_cycle: CycleView | None
    sinks: list[str]


class StatRow(BaseModel):
    invariant_id: str
    severity: str
    count: int
    last_at: str | None


class RunCycle(BaseModel):
    ids: list[str] | None = Field(default=None, max_length=100,
                                  description="Invariant ids; all when absent.")


def _service(ctx: ApiContext) -> CanaryService:
    if ctx.canary is None:
        raise NotFound("the canary is not wired into this control plane")
    return ctx.canary


def _stored(v: StoredViolation) -> ViolationView:
    return ViolationView(id=v.id, invariant_id=v.invariant_id, entity=v.entity, tier=v.tier,
                         severity=v.severity, message=v.message, observed=v.observed,
                         cycle_at=to_iso(v.cycle_at_ms), cycle_at_ms=v.cycle_at_ms)


def _cycle(r: CycleResult) -> CycleView:
    ids = list(r.violation_ids) + [None] * (len(r.violations) - len(r.violation_ids))
    return CycleView(
        cycle_at=to_iso(r.cycle_at_ms), cycle_at_ms=r.cycle_at_ms, duration_ms=r.duration_ms,
        checked=list(r.checked), transitions=list(r.transitions), recovered=list(r.recovered),
        sources_unavailable=list(r.sources_unavailable), failed=r.failed,
        violations=[ViolationView(id=i, invariant_id=v.invariant_id, entity=v.entity,
                                  tier=REGISTRY[v.invariant_id].tier.value,
                                  severity=REGISTRY[v.invariant_id].severity.value,
                                  message=v.message, observed=dict(v.observed),
                                  cycle_at=to_iso(r.cycle_at_ms), cycle_at_ms=r.cycle_at_ms)
                    for i, v in zip(ids, r.violations, strict=True)],
    )


@router.get("/invariants", summary="The invariant catalog")
async def invariants(_: FleetAdmin) -> list[InvariantView]:
    return [InvariantView(id=i.id, title=i.title, tier=i.tier.value, severity=i.severity.value,
                          dwell_s=i.dwell_s, runbook=i.runbook, checked=i.id not in UNCHECKED)
            for i in sorted(REGISTRY.values(), key=lambda i: i.id)]


@router.get("/status", summary="Whether the canary runs, and its last cycle")
async def status(ctx: Ctx, _: FleetAdmin) -> StatusView:
    service, s = _service(ctx), ctx.settings
    last = service.last
    stale = last is None or ctx.clock.now_ms() - last.cycle_at_ms > \
        STALE_AFTER_INTERVALS * s.canary_interval_s * 1000
    return StatusView(
        enabled=s.canary_enabled, interval_s=s.canary_interval_s,
        healthy=s.canary_enabled and not stale, stale=s.canary_enabled and stale,
        last_cycle=None if last is None else _cycle(last),
        sinks=[sink.name for sink in ctx.alerts.sinks] if ctx.alerts else [],
    )


@router.post("/run-cycle", summary="Run a canary cycle now")
async def run_cycle(ctx: Ctx, _: FleetAdmin, body: RunCycle | None = None) -> CycleView:
    return _cycle(await _service(ctx).run_cycle(body.ids if body else None))


class SelftestRowView(BaseModel):
    id: str
    provoked: bool
    fired: bool | None
    cleared: bool | None
    ms: float
    note: str


class SelftestView(BaseModel):
    passed: bool  # every provoked invariant fired, then cleared
    rows: list[SelftestRowView]


@router.post("/selftest", summary="Provoke each invariant for real, check it fires and clears")
async def selftest(ctx: Ctx, _: FleetAdmin) -> SelftestView:
    test = Selftest(_service(ctx), ctx.db, CanaryProbes(ctx.redis.client, ctx.redis.keys),
                    SqlCanaryProbes(ctx.db.engine), ctx.clock)
    rows = await test.run()
    return SelftestView(passed=all(r.passed for r in rows),
                        rows=[SelftestRowView(id=r.id, provoked=r.provoked, fired=r.fired,
                                              cleared=r.cleared, ms=r.ms, note=r.note)
                              for r in rows])


@router.get("/violations", summary="Violations found, newest first")
async def violations(
    ctx: Ctx, _: FleetAdmin,
    invariant: str | None = Query(default=None, pattern=r"^[A-Z]-\d{2}$"),
    severity: Severity | None = None,
    tier: Tier | None = None,
    since_ms: int | None = Query(default=None, ge=0, le=MAX_MS),
    until_ms: int | None = Query(default=None, ge=0, le=MAX_MS),
    before_id: int | None = Query(default=None, ge=1, le=MAX_ID,
                                  description="Paging cursor: the last id seen."),
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[ViolationView]:
    if invariant is not None and invariant not in REGISTRY:
        raise ConfigError(f"invariant: unknown id {invariant!r}")
    found = await ctx.db.violations.query(ViolationFilter(
        invariant, severity.value if severity else None, tier.value if tier else None,
        since_ms, until_ms, before_id, limit))
    return [_stored(v) for v in found]


@router.get("/violations/stats", summary="Violations per invariant over a window")
async def stats(
    ctx: Ctx, _: FleetAdmin, window_s: int = Query(default=86_400, ge=1, le=30 * 86_400),
) -> list[StatRow]:
    rows = await ctx.db.violations.stats(ctx.clock.now_ms() - window_s * 1000)
    return [StatRow(invariant_id=i, severity=sev, count=n, last_at=to_iso(last))
            for i, sev, n, last in rows]


@router.get("/violations/{violation_id}", summary="One violation")
async def violation(
    ctx: Ctx, _: FleetAdmin, violation_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> ViolationView:
    found = await ctx.db.violations.get(violation_id)
    if found is None:
        raise NotFound(f"canary violation {violation_id} does not exist")
    return _stored(found)
