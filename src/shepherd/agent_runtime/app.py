"""The runtime's HTTP API (DESIGN.md section 5), served with the models of ``protocol.py``.

Every route but ``GET /health`` needs the bearer token (401 otherwise). Every error body is
``ErrorBody`` (``{"code", "message"}``): unknown execution 404, ack of a running one 409, malformed
body 422 naming the field, unknown route 404, wrong method 405. Errors map to statuses in one
table; no route answers 5xx for anything a caller sent, and a child that dies early (or cannot be
spawned) is an execution result, not an HTTP error. Long-polls are capped at ``MAX_WAIT_S``.
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from shepherd import __version__
from shepherd.agent_client.protocol import (
    MAX_POLL_ACKS,
    MAX_WAIT_S,
    AckRequest,
    AckResponse,
    EventKind,
    EventsPage,
    ExecutionState,
    Health,
    Registry,
    RuntimeEvent,
    StartBatch,
    StartBatchResponse,
    StartRequest,
    StartResponse,
    TerminateResponse,
    TerminateResult,
)
from shepherd.agent_runtime.config import RuntimeConfig
from shepherd.agent_runtime.events import EventLog
from shepherd.agent_runtime.record import RunRecord
from shepherd.agent_runtime.registry import RunRegistry, uptime_s, zombie_count
from shepherd.errors import Conflict, NotFound, ShepherdError, Unauthenticated
from shepherd.secrets import given_or_stored_token

# Any non-negative wait is accepted and capped, so a client asking for more is not an error.
Wait = Annotated[float, Query(ge=0, allow_inf_nan=False)]

# The one mapping from an error the runtime raises on purpose to its HTTP status.
STATUS_BY_ERROR: tuple[tuple[type[ShepherdError], int], ...] = (
    (Unauthenticated, 401),
    (NotFound, 404),
    (Conflict, 409),
)
# Names the runtime can never use as a directory under executions/.
RESERVED_IDS = frozenset({".", ".."})
# Events per page of /v1/events: with a 64 KiB tail on each exit, at most ~16 MiB of JSON.
PAGE_EVENTS = 256
HTTP_CODES = {404: "route_not_found", 405: "method_not_allowed"}


class RuntimeState:
    """Everything the routes share: config, boot id, the registry and the event log."""

    def __init__(self, config: RuntimeConfig, token: str) -> None:
        self.config = config
        self.token = token
        self.boot_id = uuid.uuid4().hex
        self.events = EventLog()
        self.registry = RunRegistry(config, self.boot_id, self.events)
        self.started = time.monotonic()


def create_runtime_app(config: RuntimeConfig, token: str | None = None) -> FastAPI:
    """The API over a fresh ``RuntimeState`` (``app.state.runtime``); the caller recovers it and
    shuts it down (``state.registry.recover()`` / ``shutdown()``), as ``server.py`` does.

    Without ``token``, the configured one is used, else one kept in ``config.token_path``.
    """
    state = RuntimeState(config, token or given_or_stored_token(config.token, config.token_path))
    app = FastAPI(title=f"shepherd agent {config.name}", version=__version__)
    app.state.runtime = state
    _register_errors(app)

    # A coroutine: FastAPI runs a plain function dependency in a worker thread, a thread hop
    # on every request for a comparison that takes microseconds.
    async def authorized(request: Request) -> None:
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
        _check_usable(body.execution_id)
        return _started(state, await state.registry.start(body))

    @app.post("/v1/starts", status_code=202, response_model=StartBatchResponse,
              dependencies=auth)
    async def start_many(body: StartBatch) -> StartBatchResponse:
        for request in body.executions:
            _check_usable(request.execution_id)
        started = [await state.registry.start(request) for request in body.executions]
        return StartBatchResponse(started=[_started(state, r) for r in started])

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

    _register_results(app, state, auth)
    return app


def _register_results(app: FastAPI, state: RuntimeState, auth: list[Any]) -> None:
    """Where finished results leave the runtime: the event stream that carries them, and the
    acks that let the runtime forget them."""

    @app.delete("/v1/executions/{execution_id}", status_code=204, dependencies=auth)
    async def ack(execution_id: str) -> Response:
        state.registry.ack(execution_id)
        return Response(status_code=204)

    @app.post("/v1/acks", response_model=AckResponse, dependencies=auth)
    async def ack_many(body: AckRequest) -> AckResponse:
        acked, running = state.registry.ack_many(body.execution_ids)
        return AckResponse(acked=acked, running=running)

    @app.get("/v1/events", response_model=EventsPage, dependencies=auth)
    async def events(
        after: Annotated[int, Query(ge=0)] = 0, wait: Wait = 0,
        until: Annotated[Literal["any", "exited"], Query()] = "any",
        ack: Annotated[list[str] | None, Query(max_length=MAX_POLL_ACKS)] = None,
    ) -> EventsPage:
        # Results the caller stored since its last poll are forgotten before the wait: the
        # acks ride the poll instead of a request of their own.
        acked = state.registry.ack_many(ack)[0] if ack is not None else None
        found = await state.events.wait_after(after, min(wait, MAX_WAIT_S),
                                              until_exit=until == "exited")
        # Each exited event may carry an output tail: a page stops at PAGE_EVENTS, and its
        # last_seq says where the next one starts.
        page = found[:PAGE_EVENTS]
        last_seq = page[-1].seq if len(found) > PAGE_EVENTS else state.events.last_seq
        return EventsPage(boot_id=state.boot_id, events=[_with_result(state, e) for e in page],
                          last_seq=last_seq, acked=acked)


def _started(state: RuntimeState, record: RunRecord) -> StartResponse:
    return StartResponse(execution_id=record.execution_id, pid=record.pid,
                         started_at_ms=record.started_at_ms or 0, boot_id=state.boot_id)


def _with_result(state: RuntimeState, event: RuntimeEvent) -> RuntimeEvent:
    """An ``exited`` event carries the result while the runtime holds it (read at each poll,
    so the event log itself stays small)."""
    if event.kind is not EventKind.EXITED:
        return event
    record = state.registry.finished(event.execution_id)
    if record is None:
        return event
    return event.model_copy(update={"result": record.view(state.boot_id, with_tail=True)})


def _register_errors(app: FastAPI) -> None:
    @app.exception_handler(ShepherdError)
    async def _shepherd_error(_: Request, exc: ShepherdError) -> JSONResponse:
        status = next((code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind)), 500)
        return _error(status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in exc.errors()
        ]
        return _error(422, "invalid_request", "; ".join(problems))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), exc.headers)


def _check_usable(execution_id: str) -> None:
    """The protocol's pattern admits ``.`` and ``..``; as directory names they would escape."""
    if execution_id in RESERVED_IDS:
        raise RequestValidationError([{
            "loc": ("body", "execution_id"), "type": "value_error",
            "msg": f"{execution_id!r} is not a usable execution id",
        }])


def _error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)
