"""``/api/alerts`` over real stores, with the outbox sender delivering to local receivers that
stand in for Slack and a JSON webhook. Sink URLs are secrets: no log line, error or response of
the whole scenario (successes, 500s, Slack's no_service, a refused connection) contains one."""

from __future__ import annotations

import dataclasses
import logging
import socket

import httpx
import pytest

from shepherd.alerts.service import AlertService
from shepherd.alerts.sinks import configured_sinks
from shepherd.api.app import create_api
from shepherd.controllers.delivery import ConfiguredDestinations
from shepherd.controllers.outbox import OutboxConfig, OutboxSender
from shepherd.core.signals import Severity, Signal, SignalKey
from tests.api.conftest import Api
from tests.fixtures.receiver import Answer, Receiver, receiving

SECRET = "T0SECRET/B0SECRET/xoxb-very-secret-path"


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/{SECRET}/am"


def wired(api: Api, receiver: Receiver) -> tuple[httpx.AsyncClient, AlertService, OutboxSender,
                                                  list[str]]:
    urls = [f"{receiver.url}/{SECRET}/slack", closed_port_url(), f"{receiver.url}/{SECRET}/hook"]
    service = AlertService(api.db, api.clock, configured_sinks(*urls))
    app = create_api(dataclasses.replace(api.ctx, alerts=service))
    fixed = {s.destination: s.url for s in service.sinks}
    sender = OutboxSender(api.db, api.clock, ConfiguredDestinations(api.db, fixed),
                          owner="test", config=OutboxConfig(send_timeout_s=2), draw=lambda: 0.0)

    def client(who: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://shepherd.test",
                                 headers={"Authorization": f"Bearer {api.tokens[who]}"})

    return client("admin"), service, sender, [*urls, *(s.url for s in service.sinks)]


def red(entity: str) -> Signal:
    return Signal(SignalKey("canary", "S-01", entity), Severity.CRITICAL, f"{entity} is red",
                  tuple(f"row {i}" for i in range(8)), "see the runbook")


async def deliver(sender: OutboxSender) -> None:
    await sender.run_once()
    await sender.drain()


async def test_alerts_are_delivered_paced_and_no_url_leaks_anywhere(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with receiving() as receiver:
        receiver.answer(Answer(500), Answer(500))
        admin, service, sender, urls = wired(api, receiver)
        async with admin:
            await service.evaluate("canary", [red("a"), red("b")])
            await deliver(sender)
            await deliver(sender)  # within the second: Slack's pace holds the next one
            first = len(receiver.requests)
            for _ in range(6):
                api.clock.advance(2)
                await deliver(sender)
            receiver.default = Answer(404, body="no_service")
            await service.evaluate("canary", [])  # two recoveries
            for _ in range(4):
                api.clock.advance(2)
                await deliver(sender)
            responses = [await admin.get(p) for p in
                         ("/api/alerts", "/api/alerts/sinks", "/api/outbox",
                          "/api/outbox/destinations")]
        await sender.stop()
    assert first == 2  # one to Slack and one to the webhook, not four
    slack = [r for r in receiver.requests if r.path.endswith("/slack")]
    assert [r.body["blocks"][0]["text"]["text"][:25] for r in slack[:1]] == [
        ":rotating_light: CRITICAL"]
    assert all(r.status_code == 200 for r in responses)
    view = responses[0].json()
    sinks = {s["name"]: s for s in view["sinks"]}
    assert sinks["slack"]["state"] == "fatal" and sinks["slack"]["reason"] == "HTTP 404 no_service"
    assert any(d["destination"] == "alert:alertmanager" for d in view["undelivered"])
    assert [s["url"] for s in responses[1].json()] == [
        f"{receiver.url}/…", f"http://127.0.0.1:{urls[1].split(':')[2].split('/')[0]}/…",
        f"{receiver.url}/…"]
    everything = caplog.text + "".join(r.text for r in responses)
    assert SECRET not in everything
    for url in urls:
        assert url not in everything


async def test_the_alerts_view_lists_open_incidents(api: Api) -> None:
    service = AlertService(api.db, api.clock)
    await service.evaluate("canary", [red("a")])
    async with api.client("viewer") as client:
        view = (await client.get("/api/alerts")).json()
    [incident] = view["open"]
    assert (incident["kind"], incident["entity"], incident["incident"]) == ("S-01", "a", 1)
    assert view["sinks"] == [] and view["undelivered"] == []


async def test_sinks_need_an_admin_and_alerts_need_an_unscoped_token(api: Api) -> None:
    async with api.client("operator") as operator, api.client("scoped") as scoped:
        assert (await operator.get("/api/alerts/sinks")).status_code == 403
        assert (await scoped.get("/api/alerts")).status_code == 403


async def test_a_remote_source_posts_what_it_sees_and_absent_keys_clear(api: Api) -> None:
    body = {"source": "sentinel", "policy": {"realert_s": 1800},
            "signals": [{"kind": "long_running", "entity": "pid-42@1700000000",
                         "severity": "minor", "summary": "pytest running for 2 h",
                         "forensics": ["pid 42", "cmd pytest -k x"]}]}
    async with api.client("operator") as client:
        opened = (await client.post("/api/alerts/signals", json=body)).json()
        quiet = (await client.post("/api/alerts/signals", json=body)).json()
        cleared = (await client.post("/api/alerts/signals",
                                     json={"source": "sentinel", "signals": []})).json()
        bad = await client.post("/api/alerts/signals",
                                json={"source": "has space", "signals": []})
    assert [d["action"] for d in opened["decisions"]] == ["alert"]
    assert quiet["decisions"] == []
    assert [d["action"] for d in cleared["decisions"]] == ["recovery"]
    assert bad.status_code == 422


async def test_metrics_count_open_incidents_and_deliveries_by_sink_without_urls(api: Api) -> None:
    service = AlertService(api.db, api.clock, configured_sinks(
        f"https://hooks.slack.test/{SECRET}", None, None))
    await service.evaluate("canary", [red("a"), red("b")])
    async with api.client(None) as client:
        text = (await client.get("/metrics")).text
    assert "shepherd_alerts_open 2.0" in text
    assert 'shepherd_outbox_rows{sink="slack",status="pending"} 2.0' in text
    assert SECRET not in text
