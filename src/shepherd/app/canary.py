"""Wiring of the canary: its collector's limits from the settings, and the service itself."""

from __future__ import annotations

from collections.abc import Mapping

from shepherd.alerts.service import AlertService
from shepherd.canary.collect import CollectConfig, Collector
from shepherd.canary.service import CanaryService
from shepherd.canary.snapshot import CanarySettings
from shepherd.controllers.directory import AgentDirectory
from shepherd.core.clock import Clock
from shepherd.settings import Settings
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database
from shepherd.telemetry import Telemetry


def build_canary(
    s: Settings, db: Database, redis: RedisHandle, directory: AgentDirectory,
    alerts: AlertService | None, clock: Clock, telemetry: Telemetry,
    controller_intervals_s: Mapping[str, float],
) -> CanaryService:
    limits = CanarySettings(
        max_queue_age_s=s.max_queue_age_s, finalize_grace_s=s.reaper_finalize_grace_s,
        reaper_interval_s=s.reaper_interval_s,
        # A schedule fires at the scheduler's next pass after its instant: a minute of grace.
        misfire_grace_s=60.0 + s.scheduler_interval_s,
    )
    collector = Collector(db, redis, directory, clock,
                          CollectConfig(limits, dict(controller_intervals_s)))
    return CanaryService(db, collector, alerts, clock, telemetry)
