"""``/api/events`` over a real uvicorn server and a real WebSocket client: authenticated like the
API, scoped like the API, batches of transitions, resume, a refused handshake that says why, a
cookie honoured only from the dashboard's own origin, a revoked token shown the door, and the
fleet's changes (agents, circuits, canary, alerts) beside the transitions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from shepherd.agent_client.fleet_breaker import RedisBreaker
from shepherd.alerts.service import AlertService
from shepherd.api import routers
from shepherd.api.app import create_api
from shepherd.api.session_auth import SESSION_COOKIE
from shepherd.background import GuardedTask
from shepherd.canary.collect import CollectConfig, Collector
from shepherd.canary.service import CanaryService
from shepherd.canary.snapshot import CanarySettings
from shepherd.core.classification import Verdict
from shepherd.core.ids import AgentName
from shepherd.core.models import Trigger
from shepherd.services.event_hub import EventHub
from shepherd.services.event_sources import ExecutionTransitions, FleetEvents
from shepherd.services.sessions import sign_in_with_token
from shepherd.services.tokens import revoke_token
from tests.api.conftest import Api
from tests.api.test_canary_api import NoRuntimes
from tests.fixtures.fleet import free_port
from tests.stores.redis.helpers import seal_epoch


@dataclass
class Served:
    api: Api
    url: str  # ws://host:port
    hub: EventHub

    def socket(self, who: str | None = "admin", query: str = "", **headers: str) -> Any:
        if who is not None:
            headers["Authorization"] = f"Bearer {self.api.tokens[who]}"
        return connect(f"{self.url}/api/events{query}", additional_headers=headers,
                       open_timeout=5)

    async def submit(self, agent: str = "alpha") -> str:
        row = await self.api.db.executions.submit(
            agent=AgentName(agent), input="", trigger=Trigger.API, created_by="t")
        return row.id


@pytest.fixture
async def served(api: Api) -> AsyncIterator[Served]:
    hub = EventHub([ExecutionTransitions(api.db), FleetEvents(api.db)], api.clock,
                   interval_s=0.02)
    app = create_api(replace(api.ctx, events=hub))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                           log_level="warning"))
    serving = asyncio.create_task(server.serve())
    follower = GuardedTask("live-events", hub.run)
    follower.start()
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield Served(api, f"ws://127.0.0.1:{port}", hub)
    finally:
        await follower.stop()
        server.should_exit = True
        await serving


async def receive(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next message of ``kind`` (pings and other kinds skipped)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if message["kind"] == kind:
            return message  # type: ignore[no-any-return]


async def test_a_script_with_a_token_hears_transitions_as_they_happen(served: Served) -> None:
    async with served.socket() as ws:
        hello = await receive(ws, "hello")
        assert hello["role"] == "admin" and hello["sources"] == ["executions", "fleet"]
        execution_id = await served.submit()
        message = await receive(ws, "events")
    [event] = message["events"]
    assert event["type"] == "execution.transition" and event["subject"] == execution_id
    assert event["agent"] == "alpha" and event["data"]["to"] == "queued"
    assert event["data"]["from"] is None and event["at"].endswith("Z")
    assert message["cursor"]["executions"] == event["seq"]


@pytest.mark.parametrize(
    ("who", "query", "status", "code"),
    [
        (None, "", 401, "unauthenticated"),
        ("scoped", "?agent=beta", 404, "agent_not_found"),
        ("admin", "?after=nope:1", 422, "invalid_config"),
    ],
)
async def test_a_refused_handshake_answers_like_the_api(
    served: Served, who: str | None, query: str, status: int, code: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with served.socket(who, query):
            pass
    response = refused.value.response
    assert response.status_code == status
    assert json.loads(response.body)["code"] == code


async def test_a_bad_token_is_refused_with_the_api_message(served: Served) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{served.url}/api/events",
                           additional_headers={"Authorization": "Bearer shp_wrong"}):
            pass
    assert refused.value.response.status_code == 401
    assert "unknown or revoked" in json.loads(refused.value.response.body)["message"]


async def test_a_scoped_token_hears_only_its_agent(served: Served) -> None:
    async with served.socket("scoped") as ws:
        await receive(ws, "hello")
        await served.submit("beta")
        mine = await served.submit("alpha")
        message = await receive(ws, "events")
    assert [e["subject"] for e in message["events"]] == [mine]


async def test_a_client_resumes_from_its_cursor(served: Served) -> None:
    async with served.socket() as ws:
        await receive(ws, "hello")
        first = await served.submit()
        cursor = (await receive(ws, "events"))["cursor"]["executions"]
    missed = await served.submit()  # while disconnected
    async with served.socket(query=f"?after=executions:{cursor}") as ws:
        await receive(ws, "hello")
        replayed = await receive(ws, "events")
    assert [e["subject"] for e in replayed["events"]] == [missed]
    assert first != missed


async def test_a_session_cookie_is_honoured_only_from_the_dashboard_origin(
    served: Served,
) -> None:
    opened = await sign_in_with_token(served.api.db, served.api.redis,
                                      served.api.tokens["viewer"], now_ms=0, ttl_s=600)
    cookie = f"{SESSION_COOKIE}={opened.secret}"
    host = served.url.removeprefix("ws://")
    async with served.socket(None, Cookie=cookie, Origin=f"http://{host}") as ws:
        assert (await receive(ws, "hello"))["role"] == "viewer"
    with pytest.raises(InvalidStatus) as refused:
        async with served.socket(None, Cookie=cookie, Origin="http://evil.example"):
            pass
    assert refused.value.response.status_code == 403


async def test_a_revoked_token_is_disconnected_at_the_next_keepalive(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routers.events, "KEEPALIVE_S", 0.1)
    async with served.socket("operator") as ws:
        await receive(ws, "hello")
        await receive(ws, "ping")
        token_id = next(t.id for t in await served.api.db.tokens.list()
                        if t.name == "operator-token")
        await revoke_token(served.api.db, token_id, 0)
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws, "never")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_leaving_unsubscribes(served: Served) -> None:
    async with served.socket() as ws:
        await receive(ws, "hello")
        assert served.hub.subscribers == 1
    for _ in range(100):
        if served.hub.subscribers == 0:
            break
        await asyncio.sleep(0.01)
    assert served.hub.subscribers == 0


# -- the fleet's changes ---------------------------------------------------------------------------


async def events_until(ws: ClientConnection, type_: str, subject: str) -> list[dict[str, Any]]:
    """Every event received up to and including the first of ``type_`` about ``subject``."""
    seen: list[dict[str, Any]] = []
    while True:
        for event in (await receive(ws, "events"))["events"]:
            seen.append(event)
            if event["type"] == type_ and event["subject"] == subject:
                return seen


async def mark_alpha(served: Served) -> None:
    """A change of alpha, which the alpha-scoped token hears: what it heard before it, it got."""
    async with served.api.client("admin") as client:
        assert (await client.patch("/api/agents/alpha", json={"max_parallel": 2})).is_success


async def test_an_agent_created_and_changed_arrives_and_a_scoped_token_hears_only_its_own(
    served: Served,
) -> None:
    async with served.socket() as admin, served.socket("scoped") as scoped:
        await receive(admin, "hello")
        await receive(scoped, "hello")
        async with served.api.client("admin") as client:
            created = await client.post("/api/agents", json={"name": "gamma", "url": None,
                                                             "command": ["true"]})
            assert created.status_code == 201
        await mark_alpha(served)
        heard = await events_until(admin, "agent.changed", "alpha")
        theirs = await events_until(scoped, "agent.changed", "alpha")
    gamma = next(e for e in heard if e["subject"] == "gamma")
    assert (gamma["source"], gamma["agent"], gamma["data"]["change"],
            gamma["data"]["actor"]) == ("fleet", "gamma", "created", "admin-token")
    assert heard[-1]["data"]["fields"] == ["max_parallel_tasks"]
    assert [e["subject"] for e in theirs] == ["alpha"]


async def test_a_circuit_opening_arrives_for_its_agent(served: Served) -> None:
    api = served.api
    breaker = RedisBreaker(api.redis.circuits, api.redis.replicas, api.clock, replica="r1",
                           events=api.db.fleet_events)
    async with served.socket("scoped") as ws:
        await receive(ws, "hello")
        for _ in range(3):
            await breaker.record("alpha", Verdict.FAILURE, "connection refused")
        [event] = await events_until(ws, "circuit.changed", "alpha")
    assert (event["agent"], event["data"]["kind"], event["data"]["state"]) == (
        "alpha", "opened", "open")
    assert "connection refused" in event["data"]["reason"]


async def test_a_canary_violation_and_its_alert_arrive_for_fleet_wide_tokens_only(
    served: Served,
) -> None:
    api = served.api
    collector = Collector(api.db, api.redis, NoRuntimes(), api.clock,
                          CollectConfig(CanarySettings(), {}))
    canary = CanaryService(api.db, collector, AlertService(api.db, api.clock), api.clock)
    epoch = await seal_epoch(api.redis)
    await api.redis.slots.acquire("beta", "ghost", max_parallel=3, timeout_s=60,
                                  now_ms=api.clock.now_ms() - 60_000, holder="t", epoch=epoch)
    async with served.socket() as admin, served.socket("scoped") as scoped:
        await receive(admin, "hello")
        await receive(scoped, "hello")
        await canary.run_cycle(["S-01"])
        await mark_alpha(served)
        heard = await events_until(admin, "agent.changed", "alpha")
        theirs = await events_until(scoped, "agent.changed", "alpha")
    red = next(e for e in heard if e["type"] == "canary.changed")
    assert (red["subject"], red["agent"], red["data"]["state"]) == ("S-01", None, "red")
    alert = next(e for e in heard if e["type"] == "alert.changed")
    assert (alert["agent"], alert["data"]["change"], alert["data"]["kind"]) == (
        None, "opened", "S-01")
    assert [e["type"] for e in theirs] == ["agent.changed"]


async def test_an_alert_a_source_posts_arrives_opened_then_resolved(served: Served) -> None:
    body = {"source": "sentinel", "signals": [
        {"kind": "orphan", "entity": "pid-42", "severity": "critical", "summary": "orphan"}]}
    async with served.socket(query="?types=alert.changed") as ws:
        await receive(ws, "hello")
        async with served.api.client("operator") as client:
            assert (await client.post("/api/alerts/signals", json=body)).is_success
            [opened] = await events_until(ws, "alert.changed", "sentinel/orphan/pid-42")
            body["signals"] = []
            assert (await client.post("/api/alerts/signals", json=body)).is_success
            [resolved] = await events_until(ws, "alert.changed", "sentinel/orphan/pid-42")
    assert (opened["data"]["change"], opened["data"]["severity"]) == ("opened", "critical")
    assert (resolved["data"]["change"], resolved["data"]["incident"]) == ("resolved", 1)
    assert opened["agent"] is None and resolved["seq"] > opened["seq"]
