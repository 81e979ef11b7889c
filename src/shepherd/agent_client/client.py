"""The client of one agent runtime: typed calls, one request function, one error mapping.

Every call goes through ``_request``: it asks the breaker hook first, classifies the outcome with
``core.classification``, reports the verdict, and turns transport failures into
``AgentUnreachable`` / ``AgentConnectionDropped``. ``_parse`` turns responses into protocol models
or errors: 401/403 -> ``AgentRejected``; 404 on an execution -> ``ExecutionNotFound``; other 4xx
-> ``AgentRejected``; 5xx or an unparsable body -> ``AgentProtocolError``. Messages name the agent
and the route, never the token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from shepherd.agent_client.breaker import BreakerHook
from shepherd.agent_client.protocol import (
    EventsPage,
    ExecutionState,
    Health,
    Registry,
    StartRequest,
    StartResponse,
    TerminateResponse,
)
from shepherd.agent_client.transport import TRANSPORT_ERRORS, kind_of
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

    async def events(self, after: int, wait_s: float) -> EventsPage:
        response = await self._request(
            "GET", "/v1/events", params={"after": after, "wait": wait_s}, wait_s=wait_s
        )
        return _parse(response, EventsPage, self.name)

    async def _request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
        wait_s: float = 0, probe: bool = False,
    ) -> httpx.Response:
        await self._breaker.before(self.name)
        grace = self._pool.in_drop_grace(self.base_url)
        http, single_use = self._pool.http_for(self.base_url)
        timeout = httpx.Timeout(REQUEST_TIMEOUT_S + wait_s, connect=CONNECT_TIMEOUT_S)
        try:
            response = await http.request(method, path, json=json, params=params,
                                          headers=self._headers, timeout=timeout)
        except TRANSPORT_ERRORS as exc:
            kind = kind_of(exc)
            await self._breaker.record(self.name, classify(kind, probe, grace))
            if is_drop(kind):
                self._pool.mark_dropped(self.base_url, http)
            message = f"agent {self.name}: {method} {path}: {type(exc).__name__}"
            if surfaces_as_dropped(kind, grace):
                raise AgentConnectionDropped(message) from exc
            raise AgentUnreachable(message) from exc
        finally:
            if single_use:
                await http.aclose()
        await self._breaker.record(self.name, Verdict.SUCCESS)
        return response


def _check(response: httpx.Response, agent: str, execution_id: str | None = None) -> None:
    if response.is_success:
        return
    status, route = response.status_code, f"{response.request.method} {response.request.url.path}"
    detail = _error_message(response)
    if status == 404 and execution_id is not None:
        raise ExecutionNotFound(f"agent {agent}: execution {execution_id} unknown to the runtime")
    if 400 <= status < 500:
        raise AgentRejected(f"agent {agent}: {route}: {status} {detail}", status)
    raise AgentProtocolError(f"agent {agent}: {route}: {status} {detail}")


def _parse(
    response: httpx.Response, model: type[M], agent: str, execution_id: str | None = None
) -> M:
    _check(response, agent, execution_id)
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise AgentProtocolError(
            f"agent {agent}: {response.request.url.path}: body is not a {model.__name__}: "
            f"{exc.error_count()} problem(s)"
        ) from exc


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("detail") or body)[:200]
    return str(body)[:200]
