"""``/api/alerts``: open incidents, recent and undelivered alert deliveries, sinks, and the
entry point a remote source (the host sentinel) forwards its signals to.

Alerts are fleet-wide, so every route needs an unscoped token: viewer to read, operator to post
signals, admin to see the configured sinks (URLs masked). Posting signals calls the same
``AlertService.evaluate`` the in-process sources call.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from shepherd.alerts.service import AlertService
from shepherd.alerts.sinks import TOPIC
from shepherd.api.alert_views import (
    AlertsView,
    EvaluationView,
    IncidentView,
    SignalsBody,
    SinkAdminView,
    SinkView,
)
from shepherd.api.auth import Principal, require
from shepherd.api.context import ApiContext, Ctx
from shepherd.api.outbox_views import DeliveryView, DestinationView
from shepherd.core.alerting import AlertPhase, AlertPolicy
from shepherd.core.outbox import UNSETTLED, DeliveryStatus
from shepherd.core.signals import Signal, SignalKey
from shepherd.services.tokens import Role

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

FleetViewer = Annotated[Principal, Depends(require(Role.VIEWER, fleet_wide=True))]
FleetOperator = Annotated[Principal, Depends(require(Role.OPERATOR, fleet_wide=True))]
FleetAdmin = Annotated[Principal, Depends(require(Role.ADMIN, fleet_wide=True))]
RECENT = 50


def _service(ctx: ApiContext) -> AlertService:
    return ctx.alerts or AlertService(ctx.db, ctx.clock)


async def _destinations(ctx: ApiContext) -> dict[str, DestinationView]:
    now_ms = ctx.clock.now_ms()
    return {row["destination"]: DestinationView.of(row, now_ms)
            for row in await ctx.db.outbox.destinations()}


@router.get("", response_model=AlertsView,
            summary="Open incidents, recent deliveries, undelivered ones, sink states")
async def get_alerts(ctx: Ctx, principal: FleetViewer) -> AlertsView:
    states = await _destinations(ctx)
    undelivered = [*UNSETTLED, DeliveryStatus.DEAD]
    return AlertsView(
        open=[IncidentView.of(a) for a in await ctx.db.alerts.list(AlertPhase.FIRING)],
        recent=[DeliveryView.of(r) for r in await ctx.db.outbox.list(topic=TOPIC, limit=RECENT)],
        undelivered=[DeliveryView.of(r) for r in await ctx.db.outbox.list(
            topic=TOPIC, statuses=undelivered, limit=RECENT * 10)],
        sinks=[SinkView.of(s, states.get(s.destination)) for s in _service(ctx).sinks],
    )


@router.get("/sinks", response_model=list[SinkAdminView],
            summary="Configured sinks with their URLs masked (admin)")
async def get_sinks(ctx: Ctx, principal: FleetAdmin) -> list[SinkAdminView]:
    states = await _destinations(ctx)
    return [SinkAdminView.masked(s, states.get(s.destination)) for s in _service(ctx).sinks]


@router.post("/signals", response_model=EvaluationView,
             summary="Evaluate every signal a source sees active now (absent keys clear)")
async def post_signals(ctx: Ctx, principal: FleetOperator, body: SignalsBody) -> EvaluationView:
    signals = [
        Signal(SignalKey(body.source, s.kind, s.entity), s.severity, s.summary,
               tuple(s.forensics), s.runbook,
               s.forensic_total if s.forensic_total is not None else -1)
        for s in body.signals
    ]
    policies = None
    if body.policy is not None:
        policy = AlertPolicy(body.policy.pending_s, body.policy.realert_s,
                             body.policy.send_recovery)
        policies = {s.kind: policy for s in body.signals}
        policies.update({a.key.kind: policy for a in await ctx.db.alerts.list()
                         if a.key.source == body.source})
    evaluation = await _service(ctx).evaluate(body.source, signals, policies=policies)
    return EvaluationView.of(evaluation)
