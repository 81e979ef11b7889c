"""The runtime's HTTP API (DESIGN.md section 5), served with the models of ``protocol.py``.

Every route but ``GET /health`` needs the bearer token (401 otherwise). Errors are
``{"code", "message"}``: unknown execution 404, malformed body 422 naming the field; no route
answers 5xx for anything a caller sent, and a child that dies early is an execution result, not
an HTTP error.
"""

from __future__ import annotations

import hmac
import time
import uuid
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shepherd import __version__
from shepherd.agent_client.protocol import (
    MAX_WAIT_S,
    EventsPage,
    ExecutionState,
    Health,
    Registry,
    StartRequest,
    StartResponse,
    TerminateResponse,
    TerminateResult,
)
from shepherd.agent_runtime.config import RuntimeConfig
from shepherd.agent_runtime.events import EventLog
from shepherd.agent_runtime.registry import RunRegistry, uptime_s, zombie_count
from shepherd.errors import ExecutionNotFound, Unauthenticated

Wait = Annotated[float, Query(ge=0, le=3600)]


class RuntimeState:
    """Everything the routes share: config, boot id, the registry and the event log."""

    def __init__(self, config: RuntimeConfig, token: str) -> None:
        self.config = config
        self.token = token
        self.boot_id = uuid.uuid4().hex
        self.events = EventLog()
        self.registry = RunRegistry(config, self.boot_id, self.events)
        self.started = time.monotonic()


def create_runtime_app(config: RuntimeConfig, token: str) -> FastAPI:
    state = RuntimeState(config, token)
    app = FastAPI(title=f"shepherd agent {config.name}", version=__version__)
    app.state.runtime = state
    _register_errors(app)

    def authorized(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, state.token):
            raise Unauthenticated("a valid bearer token is required")

    auth = [Depends(authorized)]

    @app.get("/health", response_model=Health)
    async def health() -> Health:
        return Health(status="ok", name=config.name, version=__version__, boot_id=state.boot_id,
                      running=state.registry.running_count(), zombies=zombie_count(),
                      uptime_s=uptime_s(state.started))

    @app.post("/v1/executions", status_code=202, response_model=StartResponse, dependencies=auth)
    async def start(body: StartRequest) -> StartResponse:
        record = await state.registry.start(body)
        return StartResponse(execution_id=record.execution_id, pid=record.pid,
                             started_at_ms=record.started_at_ms or 0, boot_id=state.boot_id)

    @app.get("/v1/executions", response_model=Registry, dependencies=auth)
    async def registry() -> Registry:
        return Registry(boot_id=state.boot_id,
                        executions=[r.view(state.boot_id) for r in state.registry.all()])

    @app.get("/v1/executions/{execution_id}", response_model=ExecutionState, dependencies=auth)
    async def one(execution_id: str, wait: Wait = 0) -> ExecutionState:
        record = await state.registry.wait_finished(execution_id, min(wait, MAX_WAIT_S))
        return record.view(state.boot_id, with_tail=True)

    @app.post("/v1/executions/{execution_id}/terminate", response_model=TerminateResponse,
              dependencies=auth)
    async def terminate(execution_id: str) -> TerminateResponse:
        done = await state.registry.terminate(execution_id)
        result = TerminateResult.TERMINATED if done else TerminateResult.ALREADY_FINISHED
        return TerminateResponse(execution_id=execution_id, result=result)

    @app.delete("/v1/executions/{execution_id}", status_code=204, dependencies=auth)
    async def ack(execution_id: str) -> Response:
        state.registry.ack(execution_id)
        return Response(status_code=204)

    @app.get("/v1/events", response_model=EventsPage, dependencies=auth)
    async def events(after: Annotated[int, Query(ge=0)] = 0, wait: Wait = 0) -> EventsPage:
        found = await state.events.wait_after(after, min(wait, MAX_WAIT_S))
        return EventsPage(boot_id=state.boot_id, events=found, last_seq=state.events.last_seq)

    return app


def _register_errors(app: FastAPI) -> None:
    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(_: Request, exc: Unauthenticated) -> JSONResponse:
        return JSONResponse({"code": exc.code, "message": exc.message}, status_code=401)

    @app.exception_handler(ExecutionNotFound)
    async def _not_found(_: Request, exc: ExecutionNotFound) -> JSONResponse:
        return JSONResponse({"code": exc.code, "message": exc.message}, status_code=404)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in exc.errors()
        ]
        return JSONResponse({"code": "invalid_request", "message": "; ".join(problems)},
                            status_code=422)
