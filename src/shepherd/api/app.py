"""The REST API factory: ``create_api(ctx)`` builds the FastAPI app over a running control plane.

Everything lives under ``/api`` except ``/healthz``, ``/readyz`` and ``/metrics``. OpenAPI is at
``/openapi.json`` and ``/docs``. The app owns no resources: it neither opens nor closes stores,
so ``app.py`` decides their lifetime.
"""

from __future__ import annotations

from fastapi import FastAPI

import shepherd
from shepherd.api.context import ApiContext
from shepherd.api.errors import register_error_handlers
from shepherd.api.routers import (
    agents,
    executions,
    fleet,
    health,
    home,
    schedules,
    tokens,
    watchdog,
)

DESCRIPTION = (
    "Shepherd's control plane: agents, schedules, executions, fleet manifests and API tokens. "
    "Authenticate with `Authorization: Bearer <token>`; roles are admin > operator > viewer. "
    "Instants are ISO-8601 (`Z`) with an `*_ms` epoch-milliseconds twin. Errors are "
    '`{"code": ..., "message": ...}`.'
)


def create_api(ctx: ApiContext) -> FastAPI:
    api = FastAPI(
        title="Shepherd", version=shepherd.__version__, description=DESCRIPTION,
    )
    api.state.ctx = ctx
    register_error_handlers(api)
    for module in (home, health, agents, schedules, executions, fleet, tokens, watchdog):
        api.include_router(module.router)
    return api
