"""The client of one agent runtime: typed calls, one request function, one error mapping.

Every call goes through ``_request``: it asks the breaker hook first, classifies the outcome with
``core.classification``, reports the verdict, and turns transport failures into
``AgentUnreachable`` / ``AgentConnectionDropped``. ``probe`` is the breaker's own ``/health``
call: it skips the gate and reports nothing, returning the verdict to the breaker instead.
``_parse`` turns responses into protocol models or errors: 401/403 -> ``AgentRejected``; 404 on an
execution -> ``ExecutionNotFound``; other 4xx -> ``AgentRejected``; 5xx or an unparsable body ->
``AgentProtocolError``. Messages name the agent and the route, never the token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from shepherd.agent_client.breaker import BreakerHook
from shepherd.agent_client.protocol import (
    AckResponse,
    EventsPage,
    ExecutionState,
    Health,
    Registry,
    StartBatchResponse,
    StartRequest,
    StartResponse,
    TerminateResponse,
)
from shepherd.agent_client.transport import TRANSPORT_ERRORS, kind_of
from shepherd.agent_client.wire import Response
from shepherd.core.classification import Verdict, classify, is_drop, surfaces_as_dropped
from shepherd.errors import (
    AgentConnectionDropped,
    AgentProtocolError,
    AgentRejected,
    AgentUnreachable,
    ExecutionNotFound,
)

if TYPE_CHECKING:
    from shepherd.agent_client.pool import AgentClientPool

M = TypeVar("M", bound=BaseModel)

# A runtime on the same network answers in milliseconds; these bound a sick one.
CONNECT_TIMEOUT_S = 3.0
REQUEST_TIMEOUT_S = 10.0


class AgentClient:
    def __init__(
        self, name: str, base_url: str, token: str, *, pool: AgentClientPool,
        breaker: BreakerHook,
    ) -> None:
        self.name = name
        self.base_url = base_url
        self._headers = {"Authorization": f"Bearer {token}"}
        self._pool = pool
        self._breaker = breaker

    async def health(self) -> Health:
        return _parse(await self._request("GET", "/health", probe=True), Health, self.name)

    async def start(self, request: StartRequest) -> StartResponse:
        response = await self._request("POST", "/v1/executions", json=request.model_dump())
        return _parse(response, StartResponse, self.name)

    async def start_many(self, requests: list[StartRequest]) -> list[StartResponse]:
        """Start several in one request (``POST /v1/starts``); a runtime that predates it
        answers 404, which raises ``AgentRejected`` with that status."""
        body = {"executions": [r.model_dump() for r in requests]}
        response = await self._request("POST", "/v1/starts", json=body)
        return _parse(response, StartBatchResponse, self.name).started

    async def get(self, execution_id: str, wait_s: float = 0) -> ExecutionState:
        response = await self._request(
            "GET", f"/v1/executions/{execution_id}", params={"wait": wait_s} if wait_s else None,
            wait_s=wait_s,
        )
        return _parse(response, ExecutionState, self.name, execution_id)

    async def list_executions(self) -> Registry:
        return _parse(await self._request("GET", "/v1/executions"), Registry, self.name)

    async def terminate(self, execution_id: str) -> TerminateResponse:
        response = await self._request("POST", f"/v1/executions/{execution_id}/terminate")
        return _parse(response, TerminateResponse, self.name, execution_id)

    async def ack(self, execution_id: str) -> None:
        response = await self._request("DELETE", f"/v1/executions/{execution_id}")
        _check(response, self.name, execution_id)

    async def ack_many(self, execution_ids: list[str]) -> AckResponse:
        """Forget finished results in one request (unknown ones count as acked)."""
        response = await self._request("POST", "/v1/acks",
                                       json={"execution_ids": execution_ids})
        return _parse(response, AckResponse, self.name)

    async def events(
        self, after: int, wait_s: float, until_exit: bool = False, ack: Sequence[str] = (),
    ) -> EventsPage:
        """Events after ``after``, waiting up to ``wait_s`` for one (with ``until_exit``, for an
        ``exited`` one; a runtime that predates it answers at the first event of any kind).
        ``ack`` (at most ``MAX_POLL_ACKS``) are forgotten first; the page's ``acked`` is None
        when the runtime predates that, and they are still to be acked."""
        params: dict[str, Any] = {"after": after, "wait": wait_s}
        if until_exit:
            params["until"] = "exited"
        if ack:
            params["ack"] = list(ack)
        response = await self._request("GET", "/v1/events", params=params, wait_s=wait_s)
        return _parse(response, EventsPage, self.name)

    async def probe(self) -> Exchange:
        """One ``GET /health`` for the breaker's half-open probe, past the gate, unrecorded."""
        return await self._exchange("GET", "/health", probe=True)

    async def _request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
        wait_s: float = 0, probe: bool = False,
    ) -> Response:
        await self._breaker.before(self.name)
        exchange = await self._exchange(method, path, json=json, params=params, wait_s=wait_s,
                                        probe=probe)
        await self._breaker.record(self.name, exchange.verdict, exchange.detail)
        if exchange.error is not None:
            raise exchange.error from exchange.error.__cause__
        assert exchange.response is not None
        return exchange.response

    async def _exchange(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
        wait_s: float = 0, probe: bool = False,
    ) -> Exchange:
        grace = self._pool.in_drop_grace(self.base_url)
        async with self._pool.borrow(self.base_url) as http:
            try:
                response = await http.request(
                    method, path, json_body=json, params=params, headers=self._headers,
                    timeout_s=REQUEST_TIMEOUT_S + wait_s, connect_timeout_s=CONNECT_TIMEOUT_S)
            except TRANSPORT_ERRORS as exc:
                kind = kind_of(exc)
                # A sibling's drop stamped while this call was in flight counts too.
                grace = grace or self._pool.in_drop_grace(self.base_url)
                if is_drop(kind):
                    self._pool.mark_dropped(self.base_url, http)
                detail = f"{method} {path}: {type(exc).__name__} ({kind.value})"
                message = f"agent {self.name}: {detail}"
                error = (AgentConnectionDropped(message) if surfaces_as_dropped(kind, grace)
                         else AgentUnreachable(message))
                error.__cause__ = exc
                return Exchange(classify(kind, probe, grace), detail, None, error)
        detail = f"{method} {path}: {response.status_code}"
        return Exchange(Verdict.SUCCESS, detail, response, None)


@dataclass(frozen=True, slots=True)
class Exchange:
    """How one HTTP exchange with a runtime ended: the breaker's verdict, a short description
    for its events (route and outcome, never a token), and the response or the error to raise."""

    verdict: Verdict
    detail: str
    response: Response | None
    error: AgentUnreachable | None


def _check(response: Response, agent: str, execution_id: str | None = None) -> None:
    if response.is_success:
        return
    status, route = response.status_code, f"{response.method} {response.path}"
    detail = _error_message(response)
    if status == 404 and execution_id is not None:
        raise ExecutionNotFound(f"agent {agent}: execution {execution_id} unknown to the runtime")
    if 400 <= status < 500:
        raise AgentRejected(f"agent {agent}: {route}: {status} {detail}", status)
    raise AgentProtocolError(f"agent {agent}: {route}: {status} {detail}")


def _parse(
    response: Response, model: type[M], agent: str, execution_id: str | None = None
) -> M:
    _check(response, agent, execution_id)
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise AgentProtocolError(
            f"agent {agent}: {response.path}: body is not a {model.__name__}: "
            f"{exc.error_count()} problem(s)"
        ) from exc


def _error_message(response: Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("detail") or body)[:200]
    return str(body)[:200]
