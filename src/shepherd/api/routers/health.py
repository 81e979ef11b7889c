"""Liveness, readiness and Prometheus metrics: no auth, outside ``/api``.

``/healthz`` answers while the process serves HTTP. ``/readyz`` answers 200 only when SQL and
Redis both answer, 503 (naming the store that did not) otherwise, so a load balancer stops
sending traffic to a replica that cannot do its work.
"""

from __future__ import annotations

from collections.abc import Awaitable

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from shepherd.api.context import Ctx
from shepherd.api.metrics import CONTENT_TYPE, collect_metrics, render_metrics
from shepherd.api.views import Health
from shepherd.errors import StoreError

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Health, summary="Readiness: SQL and Redis reachable",
            responses={503: {"model": Health, "description": "A store does not answer"}})
async def readyz(ctx: Ctx) -> Response:
    checks = {"sql": await _check(ctx.db.ping()), "redis": await _check(ctx.redis.ping())}
    ready = all(v == "ok" for v in checks.values())
    body = Health(status="ready" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


async def _check(probe: Awaitable[None]) -> str:
    try:
        await probe
    except StoreError as exc:
        return f"unavailable: {exc.message}"
    return "ok"


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {CONTENT_TYPE: {}}}})
async def metrics(ctx: Ctx) -> Response:
    snapshot = await collect_metrics(ctx)
    return Response(render_metrics(snapshot, ctx.telemetry), media_type=CONTENT_TYPE)
