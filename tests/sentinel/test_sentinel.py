"""The sentinel end to end on one host: real long-lived processes, aged by a manual clock,
decided by the alert engine on the sentinel's own SQLite file, delivered by its outbox sender to a
local receiver standing in for a webhook."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psutil
import pytest

from shepherd.app.sentinel import DB_FILE, SentinelOptions, running_sentinel
from shepherd.core.alerting import AlertAction, AlertPhase
from shepherd.core.clock import ManualClock
from shepherd.core.footprints import Footprint
from shepherd.sentinel.config import SentinelConfig
from shepherd.sentinel.footprints import FootprintMemory
from shepherd.sentinel.service import Sentinel, SentinelReport
from shepherd.settings import Settings
from shepherd.stores.sql.database import open_database
from tests.fixtures.receiver import Receiver, receiving
from tests.sentinel.conftest import Marked, SpawnMarked, sentinel_config, sentinel_on

A = AlertAction


def actions(report: SentinelReport) -> list[tuple[str, AlertAction]]:
    return [(d.key.entity, d.action) for d in report.decisions]


async def scan(sentinel: Sentinel) -> SentinelReport:
    """One scan, then wait for what its outbox pass started to be delivered."""
    report = await sentinel.run_once()
    if sentinel.parts.sender is not None:
        await sentinel.parts.sender.drain()
    return report


def delivered(receiver: Receiver) -> list[tuple[str, str]]:
    return [(r.body["action"], r.body["entity"]) for r in receiver.requests]


async def test_a_long_lived_match_alerts_once_reminds_after_the_cooldown_and_recovers_once(
    tmp_path: Path, spawn_marked: SpawnMarked, marker: str,
) -> None:
    proc = spawn_marked()
    clock = ManualClock(proc.created_ms + 30_000)
    with receiving() as receiver:
        settings = Settings.model_construct(alert_webhook_url=receiver.url)
        async with sentinel_on(tmp_path, clock, sentinel_config(marker),
                               settings=settings) as sentinel:
            young = await scan(sentinel)
            assert young.watched == [proc.entity] and young.active == [] and actions(young) == []
            clock.set(proc.created_ms + 60_000)  # exactly the threshold: not yet
            assert actions(await scan(sentinel)) == []
            clock.set(proc.created_ms + 61_000)
            assert actions(await scan(sentinel)) == [(proc.entity, A.ALERT)]
            clock.advance(100)
            assert actions(await scan(sentinel)) == []  # within the cooldown
            clock.advance(1800)
            assert actions(await scan(sentinel)) == [(proc.entity, A.REALERT)]
            proc.kill()
            clock.advance(30)
            gone = await scan(sentinel)
            assert gone.watched == [] and actions(gone) == [(proc.entity, A.RECOVERY)]
            clock.advance(30)
            assert actions(await scan(sentinel)) == []
            clock.advance(3600)
            assert actions(await scan(sentinel)) == []
        assert delivered(receiver) == [("alert", proc.entity), ("realert", proc.entity),
                                       ("recovery", proc.entity)]
        alert = receiver.requests[0].body
        assert alert["kind"] == "long_lived_process" and alert["source"].startswith("sentinel:")
        assert str(proc.pid) in alert["summary"] and marker in alert["summary"]


async def test_each_process_is_its_own_incident_and_only_the_one_that_died_recovers(
    tmp_path: Path, spawn_marked: SpawnMarked, marker: str,
) -> None:
    first, second = spawn_marked(), spawn_marked()
    clock = ManualClock(max(first.created_ms, second.created_ms) + 61_000)
    async with sentinel_on(tmp_path, clock, sentinel_config(marker)) as sentinel:
        assert sorted(actions(await scan(sentinel))) == sorted(
            [(first.entity, A.ALERT), (second.entity, A.ALERT)])
        first.kill()
        clock.advance(30)
        assert actions(await scan(sentinel)) == [(first.entity, A.RECOVERY)]
        assert (await scan(sentinel)).active == [second.entity]


async def test_a_restarted_sentinel_neither_alerts_again_nor_forgets_the_open_incident(
    tmp_path: Path, spawn_marked: SpawnMarked, marker: str,
) -> None:
    proc = spawn_marked()
    clock = ManualClock(proc.created_ms + 61_000)
    config = sentinel_config(marker)
    async with sentinel_on(tmp_path, clock, config) as sentinel:
        assert actions(await scan(sentinel)) == [(proc.entity, A.ALERT)]
    clock.advance(60)
    async with sentinel_on(tmp_path, clock, config) as restarted:
        assert actions(await scan(restarted)) == []
        proc.kill()
        assert actions(await scan(restarted)) == [(proc.entity, A.RECOVERY)]
    assert (tmp_path / "sentinel.db").is_file()


async def test_a_command_line_leaves_the_host_with_its_secrets_redacted(
    tmp_path: Path, spawn_marked: SpawnMarked, marker: str,
) -> None:
    proc = spawn_marked("--token", "hunter2", "DB_PASSWORD=swordfish")
    clock = ManualClock(proc.created_ms + 61_000)
    with receiving() as receiver:
        settings = Settings.model_construct(alert_webhook_url=receiver.url)
        async with sentinel_on(tmp_path, clock, sentinel_config(marker),
                               settings=settings) as sentinel:
            assert actions(await scan(sentinel)) == [(proc.entity, A.ALERT)]
        [request] = receiver.requests
        carried = str(request.body)
        assert marker in carried and "--token [redacted]" in carried
        assert "hunter2" not in carried and "swordfish" not in carried
        assert any(row.startswith("CPU time") for row in request.body["forensics"])


async def test_a_disabled_sentinel_never_reads_the_process_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    read: list[int] = []
    monkeypatch.setattr(psutil, "process_iter", lambda *a, **k: read.append(1) or iter(()))
    options = SentinelOptions(tmp_path / "sentinel", (tmp_path,))
    async with running_sentinel(options, SentinelConfig(enabled=False)) as sentinel:
        assert sentinel is None
    assert read == []
    assert not (tmp_path / "sentinel").exists()  # nothing built either


async def test_an_enabled_sentinel_scans_in_the_background_until_the_block_ends(
    tmp_path: Path, spawn_marked: SpawnMarked, marker: str,
) -> None:
    proc: Marked = spawn_marked()
    clock = ManualClock(proc.created_ms + 61_000)
    data_dir = tmp_path / "sentinel"
    config = sentinel_config(marker, interval_s=0.05)
    async with running_sentinel(SentinelOptions(data_dir), config, clock,
                                Settings.model_construct()) as sentinel:
        assert sentinel is not None
        store = await open_database(f"sqlite+aiosqlite:///{data_dir / DB_FILE}", clock)
        try:
            for _ in range(200):
                incidents = await store.alerts.list(AlertPhase.FIRING)
                if incidents:
                    break
                await asyncio.sleep(0.05)
        finally:
            await store.close()
        assert [a.key.entity for a in incidents] == [proc.entity]


async def test_beside_a_runtime_a_sentinel_that_cannot_open_its_store_is_skipped_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    options = SentinelOptions(blocked / "sentinel")
    config = sentinel_config("x")
    async with running_sentinel(options, config, settings=Settings.model_construct(),
                                beside="runtime a") as sentinel:
        assert sentinel is None
    assert "sentinel: not started beside runtime a" in caplog.text
    with pytest.raises(OSError):
        async with running_sentinel(options, config, settings=Settings.model_construct()):
            pass


async def test_footprints_that_cannot_be_saved_are_logged_and_kept_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    memory = FootprintMemory(tmp_path / "a-file" / "sentinel")
    (tmp_path / "a-file").write_text("not a directory")
    prints = {"e1": Footprint("e1", "a", 1, None, None)}
    memory.save(prints)
    assert "footprints not saved" in caplog.text
    ok = FootprintMemory(tmp_path / "ok")
    ok.save(prints)
    assert FootprintMemory(tmp_path / "ok").load() == prints
