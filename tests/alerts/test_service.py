"""The alert service on real SQL: decisions per key, state that survives a restart, one outbox
message per configured sink in the same transaction, and silence when no sink is set."""

from __future__ import annotations

import asyncio

import pytest

from shepherd.alerts.service import AlertService
from shepherd.alerts.sinks import configured_sinks
from shepherd.core.alerting import AlertAction, AlertPhase, AlertPolicy
from shepherd.core.clock import ManualClock
from shepherd.core.outbox import SinkKind
from shepherd.core.signals import Severity, Signal, SignalKey
from shepherd.errors import ConfigError
from shepherd.stores.sql.database import Database, open_database

A = AlertAction
SINKS = configured_sinks("https://hooks.slack.test/T/B/secret", "http://am.test:9093",
                         "https://hooks.test/alerts")


def red(entity: str = "agent-a", summary: str = "slots disagree") -> Signal:
    return Signal(SignalKey("canary", "S-01", entity), Severity.CRITICAL, summary,
                  ("eid 1 holds a slot",), "reclaim the slot")


def actions(evaluation) -> list[tuple[str, AlertAction]]:  # type: ignore[no-untyped-def]
    return [(d.key.entity, d.action) for d in evaluation.decisions]


async def test_a_source_alerts_once_realerts_after_its_interval_and_recovers_once(
    db: Database, clock: ManualClock
) -> None:
    service = AlertService(db, clock, SINKS, policies={"S-01": AlertPolicy(realert_s=600)})
    assert actions(await service.evaluate("canary", [red()])) == [("agent-a", A.ALERT)]
    clock.advance(300)
    assert actions(await service.evaluate("canary", [red()])) == []
    clock.advance(300)
    assert actions(await service.evaluate("canary", [red()])) == [("agent-a", A.REALERT)]
    clock.advance(60)
    assert actions(await service.evaluate("canary", [])) == [("agent-a", A.RECOVERY)]
    assert actions(await service.evaluate("canary", [])) == []
    rows = await db.outbox.list(topic="alert", limit=100)
    assert len(rows) == 3 * len(SINKS)
    assert {r.sink for r in rows} == {SinkKind.SLACK, SinkKind.ALERTMANAGER, SinkKind.WEBHOOK}
    assert {r.subject for r in rows} == {"canary/S-01/agent-a"}


async def test_a_restart_neither_realerts_nor_forgets_an_open_incident(
    db: Database, clock: ManualClock, sql_url: str
) -> None:
    await AlertService(db, clock, SINKS).evaluate("canary", [red("a"), red("b")])
    again = await open_database(sql_url, clock)
    try:
        restarted = AlertService(again, clock, SINKS)
        clock.advance(10)
        assert actions(await restarted.evaluate("canary", [red("a"), red("b")])) == []
        assert actions(await restarted.evaluate("canary", [red("a")])) == [("b", A.RECOVERY)]
        firing = await again.alerts.list(AlertPhase.FIRING)
    finally:
        await again.close()
    assert [a.key.entity for a in firing] == ["a"]


async def test_without_sinks_nothing_is_enqueued_but_the_state_is_tracked(
    db: Database, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    service = AlertService(db, clock)
    assert actions(await service.evaluate("canary", [red()])) == [("agent-a", A.ALERT)]
    assert await db.outbox.list() == []
    assert [a.key.entity for a in await db.alerts.list(AlertPhase.FIRING)] == ["agent-a"]
    assert "alert ALERT canary/S-01/agent-a [critical] incident #1" in caplog.text


async def test_each_source_only_clears_its_own_keys(db: Database, clock: ManualClock) -> None:
    service = AlertService(db, clock)
    watchdog = Signal(SignalKey("watchdog", "systemic", "fleet"), Severity.MAJOR, "most down")
    await service.evaluate("canary", [red()])
    await service.evaluate("watchdog", [watchdog])
    assert actions(await service.evaluate("watchdog", [])) == [("fleet", A.RECOVERY)]
    assert len(await db.alerts.list(AlertPhase.FIRING)) == 1


async def test_a_pending_period_swallows_a_flap(db: Database, clock: ManualClock) -> None:
    service = AlertService(db, clock, SINKS, policies={"S-01": AlertPolicy(pending_s=120)})
    for active in (True, False, True, False):
        assert actions(await service.evaluate("canary", [red()] if active else [])) == []
        clock.advance(60)
    assert await db.outbox.list() == []


async def test_a_signal_of_another_source_is_refused(db: Database, clock: ManualClock) -> None:
    with pytest.raises(ConfigError):
        await AlertService(db, clock).evaluate("sentinel", [red()])


async def test_concurrent_evaluations_of_one_source_alert_once(
    db: Database, clock: ManualClock
) -> None:
    service = AlertService(db, clock, SINKS)
    results = await asyncio.gather(*(service.evaluate("canary", [red()]) for _ in range(4)),
                                   return_exceptions=True)
    alerts = [d for r in results if not isinstance(r, BaseException) for d in r.decisions]
    assert [d.action for d in alerts] == [A.ALERT]
    assert len(await db.outbox.list(topic="alert")) == len(SINKS)


async def test_every_decision_is_an_alert_event_and_only_the_breakers_name_an_agent(
    db: Database, clock: ManualClock
) -> None:
    service = AlertService(db, clock, policies={"S-01": AlertPolicy(realert_s=600)})
    dormant = Signal(SignalKey("breaker", "dormant", "a"), Severity.MAJOR, "a is dormant")
    await service.evaluate("canary", [red()])
    await service.evaluate("breaker", [dormant])
    clock.advance(600)
    await service.evaluate("canary", [red()])
    await service.evaluate("canary", [])
    events = await db.fleet_events.read(0, 100)
    assert [(e.type, e.subject, e.agent, e.data["change"], e.data["incident"]) for e in events] == [
        ("alert.changed", "canary/S-01/agent-a", None, "opened", 1),
        ("alert.changed", "breaker/dormant/a", "a", "opened", 1),
        ("alert.changed", "canary/S-01/agent-a", None, "repeated", 1),
        ("alert.changed", "canary/S-01/agent-a", None, "resolved", 1)]
    assert events[0].data["severity"] == "critical" and events[0].data["summary"] == \
        "slots disagree"
    assert events[3].data["opened_at_ms"] == events[0].at_ms
