"""The REST API factory: ``create_api(ctx)`` builds the FastAPI app over a running control plane.

Everything lives under ``/api`` except ``/healthz``, ``/readyz`` and ``/metrics``; ``/`` is the
dashboard, which ``app/`` installs on the same app (``shepherd.web``). OpenAPI is at
``/openapi.json`` and ``/docs``. The app owns no resources: it neither opens nor closes stores,
so ``app.py`` decides their lifetime.
"""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

import shepherd
from shepherd.api.context import ApiContext
from shepherd.api.docs import install_docs
from shepherd.api.errors import register_error_handlers
from shepherd.api.guard import RequestGuard
from shepherd.api.routers import (
    agents,
    alerts,
    canary,
    circuits,
    events,
    executions,
    fleet,
    health,
    outbox,
    reaper,
    schedules,
    tokens,
    watchdog,
)
from shepherd.services.tokens import verify_token

DESCRIPTION = (
    "Shepherd's control plane: agents, schedules, executions, fleet manifests and API tokens. "
    "Authenticate with `Authorization: Bearer <token>`; roles are admin > operator > viewer. "
    "Instants are ISO-8601 (`Z`) with an `*_ms` epoch-milliseconds twin. Errors are "
    '`{"code": ..., "message": ...}`.'
)


def create_api(ctx: ApiContext) -> FastAPI:
    # /docs is served from the package (docs.py); ReDoc would load from a CDN.
    api = FastAPI(
        title="Shepherd", version=shepherd.__version__, description=DESCRIPTION,
        docs_url=None, redoc_url=None,
    )
    api.state.ctx = ctx
    register_error_handlers(api)
    api.add_middleware(
        RequestGuard, verify=partial(verify_token, ctx.db),
        max_body_bytes=ctx.settings.max_request_body_bytes,
    )
    routers = [m.router for m in (health, agents, circuits, schedules, executions, fleet, tokens,
                                  outbox, alerts, events, watchdog, reaper, canary)]
    for router in routers:
        api.include_router(router)
    install_docs(api, routers)
    return api
