"""apply_manifest: idempotent, arms new schedules, deletes dropped ones, never unlisted agents."""

from __future__ import annotations

from shepherd.core.clock import ManualClock
from shepherd.core.cron import next_after_ms
from shepherd.core.ids import AgentName
from shepherd.manifest.load import parse_manifest
from shepherd.services.fleet import apply_manifest
from shepherd.stores.sql.database import Database

FLEET = """
agents:
  - name: echo
    command: [cat]
    max_parallel: 2
  - name: remote
    url: http://remote.test:9000
schedules:
  - name: tick
    agent: echo
    cron: "*/5 * * * *"
    input: hello
  - agent: remote
    cron: "0 * * * *"
"""


async def test_a_first_apply_creates_everything_and_arms_schedules(
    db: Database, clock: ManualClock
) -> None:
    changes = await apply_manifest(db, parse_manifest(FLEET), clock.now_ms())
    assert sorted(changes.agents.created) == ["echo", "remote"]
    assert sorted(changes.schedules.created) == ["remote-1", "tick"]
    echo = await db.agents.get(AgentName("echo"))
    assert (echo.max_parallel_tasks, echo.command, echo.url) == (2, ("cat",), None)
    tick = next(s for s in await db.schedules.list() if s.name == "tick")
    assert tick.next_run_at_ms == next_after_ms("*/5 * * * *", "UTC", clock.now_ms())


async def test_applying_the_same_manifest_twice_changes_nothing_the_second_time(
    db: Database, clock: ManualClock
) -> None:
    manifest = parse_manifest(FLEET)
    await apply_manifest(db, manifest, clock.now_ms())
    before = await db.schedules.list()
    clock.advance(3600)
    again = await apply_manifest(db, manifest, clock.now_ms())
    assert not again.changed
    assert sorted(again.agents.unchanged) == ["echo", "remote"]
    assert sorted(again.schedules.unchanged) == ["remote-1", "tick"]
    assert await db.schedules.list() == before


async def test_a_changed_manifest_updates_in_place_and_deletes_dropped_schedules(
    db: Database, clock: ManualClock
) -> None:
    await apply_manifest(db, parse_manifest(FLEET), clock.now_ms())
    tick_id = next(s.id for s in await db.schedules.list() if s.name == "tick")
    changed = FLEET.replace("max_parallel: 2", "max_parallel: 4").replace(
        '"*/5 * * * *"', '"*/10 * * * *"'
    ).split("  - agent: remote")[0]
    changes = await apply_manifest(db, parse_manifest(changed), clock.now_ms())
    assert changes.agents.updated == ["echo"]
    assert changes.schedules.updated == ["tick"]
    assert changes.schedules.deleted == ["remote-1"]
    [tick] = await db.schedules.list()
    assert (tick.id, tick.cron) == (tick_id, "*/10 * * * *")
    assert tick.next_run_at_ms == next_after_ms("*/10 * * * *", "UTC", clock.now_ms())


async def test_agents_missing_from_the_manifest_are_reported_not_deleted(
    db: Database, clock: ManualClock
) -> None:
    await db.agents.create(name=AgentName("legacy"), url="http://legacy.test", command=None)
    changes = await apply_manifest(db, parse_manifest(FLEET), clock.now_ms())
    assert changes.unmanaged == ["legacy"]
    assert (await db.agents.get(AgentName("legacy"))).name == "legacy"


async def test_a_local_agent_keeps_the_url_its_runtime_registered(
    db: Database, clock: ManualClock
) -> None:
    manifest = parse_manifest(FLEET)
    await apply_manifest(db, manifest, clock.now_ms())
    await db.agents.update(AgentName("echo"), url="http://127.0.0.1:40001")
    again = await apply_manifest(db, manifest, clock.now_ms())
    assert "echo" in again.agents.unchanged
    assert (await db.agents.get(AgentName("echo"))).url == "http://127.0.0.1:40001"


async def test_require_input_read_follows_the_manifest_on_create_and_on_change(
    db: Database, clock: ManualClock
) -> None:
    strict = "agents:\n  - name: echo\n    command: [cat]\n    require_input_read: true\n"
    await apply_manifest(db, parse_manifest(strict), clock.now_ms())
    assert (await db.agents.get("echo")).require_input_read is True
    loose = "agents:\n  - name: echo\n    command: [cat]\n"
    changes = await apply_manifest(db, parse_manifest(loose), clock.now_ms())
    assert changes.agents.updated == ["echo"]
    assert (await db.agents.get("echo")).require_input_read is False
