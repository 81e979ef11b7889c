"""Fleet alerts on real SQL and Redis: a dormant circuit and a systemic watchdog verdict alert
once, stay quiet while they last, clear when they end, and a targeted cycle changes nothing."""

from __future__ import annotations

from shepherd.alerts.service import AlertService
from shepherd.controllers.fleet_alerts import FleetAlerts
from shepherd.core.alerting import AlertPhase
from shepherd.core.clock import ManualClock
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database
from tests.api.test_circuits import park_dormant


async def firing(db: Database) -> list[str]:
    return sorted(a.key.label for a in await db.alerts.list(AlertPhase.FIRING))


async def incidents(db: Database) -> dict[str, int]:
    return {a.key.label: a.state.incidents for a in await db.alerts.list()}


async def build(db: Database, redis: RedisHandle, clock: ManualClock) -> FleetAlerts:
    for name in ("alpha", "beta"):
        await db.agents.create(name=name, url="http://127.0.0.1:9", command=None)
    return FleetAlerts(db, redis, AlertService(db, clock), clock)


async def test_a_dormant_circuit_alerts_once_and_clears_when_it_closes(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    controller = await build(db, redis_handle, clock)
    assert (await controller.run_once()).active == []
    await park_dormant(redis_handle.circuits, "alpha", clock.now_ms())
    assert (await controller.run_once()).active == ["breaker/dormant/alpha"]
    await controller.run_once()  # still dormant: the same incident
    assert await firing(db) == ["breaker/dormant/alpha"]
    assert (await incidents(db))["breaker/dormant/alpha"] == 1
    await redis_handle.circuits.clear("alpha")
    report = await controller.run_once()
    assert report.evaluated == ["breaker"] and await firing(db) == []
    assert (await controller.run_once()).evaluated == []  # green and it was green: no write


async def test_only_a_full_watchdog_cycle_raises_or_clears_the_systemic_alert(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    controller = await build(db, redis_handle, clock)
    reports = redis_handle.reports
    skipped = [{"agent": n, "reach": "unreachable", "reason": "systemic", "unreachable_since_ms": 1}
               for n in ("alpha", "beta")]
    await reports.save_detail("watchdog", {"scope": "full", "systemic": True,
                                           "agents": ["alpha", "beta"], "skipped": skipped})
    await controller.run_once()
    assert await firing(db) == ["watchdog/systemic/fleet"]
    await reports.save_detail("watchdog", {"scope": "targeted", "systemic": False,
                                           "agents": ["alpha"], "skipped": []})
    await controller.run_once()
    assert await firing(db) == ["watchdog/systemic/fleet"]  # one agent does not speak for all
    await reports.save_detail("watchdog", {"scope": "full", "systemic": False,
                                           "agents": ["alpha", "beta"], "skipped": []})
    await controller.run_once()
    assert await firing(db) == []
    assert (await incidents(db))["watchdog/systemic/fleet"] == 1
