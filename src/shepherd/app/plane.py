"""The control plane's wiring: the one place that builds stores, clients and controllers and owns
startup and shutdown order.

Startup: open SQL (migrate, instance id), connect Redis (embedded by default), check both carry
the same instance id, then start the controller loops. The monitor's first pass re-attaches a
watcher to every agent, and each watcher's registry pass settles rows that finished while the
control plane was down (startup recovery). Shutdown stops the loops in order, each bounded,
then closes the clients and the stores.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

from shepherd.agent_client.pool import AgentClientPool
from shepherd.alerts.service import AlertService
from shepherd.api.context import ApiContext
from shepherd.app.alerting import build_alert_service, build_outbox_sender
from shepherd.background import GuardedTask, stop_all
from shepherd.clock import SystemClock
from shepherd.controllers.base import Controller, Wakeup
from shepherd.controllers.directory import PooledDirectory
from shepherd.controllers.dispatcher import Dispatcher
from shepherd.controllers.finalizer import Finalizer
from shepherd.controllers.loop import ControllerLoop, LoopConfig
from shepherd.controllers.maintenance import Maintenance
from shepherd.controllers.monitor import Monitor
from shepherd.controllers.outbox import OutboxSender
from shepherd.controllers.scheduler import Scheduler
from shepherd.core.clock import Clock
from shepherd.secrets import given_or_stored_token
from shepherd.settings import Settings
from shepherd.stores.redis.connection import RedisHandle, connect_redis
from shepherd.stores.redis.instance import mirror_instance_id
from shepherd.stores.sql.database import Database, open_database
from shepherd.telemetry import Telemetry

log = logging.getLogger("shepherd.app")

AGENT_TOKEN_FILE = "agent.token"


def agent_token(settings: Settings) -> str:
    """The fleet's agent token: the setting, else the one kept in the data dir."""
    return given_or_stored_token(settings.agent_token, settings.data_dir / AGENT_TOKEN_FILE)


@dataclass
class ControlPlane:
    settings: Settings
    clock: Clock
    db: Database
    redis: RedisHandle
    pool: AgentClientPool
    owner: str
    dispatch_wakeup: Wakeup = field(default_factory=Wakeup)
    finalize_wakeup: Wakeup = field(default_factory=Wakeup)
    outbox_wakeup: Wakeup = field(default_factory=Wakeup)
    loops: list[ControllerLoop] = field(default_factory=list)
    tasks: list[GuardedTask] = field(default_factory=list)
    monitor: Monitor | None = None
    outbox: OutboxSender | None = None
    alerts: AlertService | None = None
    directory: PooledDirectory | None = None
    closed: bool = False
    telemetry: Telemetry = field(default_factory=lambda: Telemetry(process_metrics=True))

    @classmethod
    async def open(cls, settings: Settings, clock: Clock | None = None) -> ControlPlane:
        """Open the stores and build the controllers; ``start()`` sets them running."""
        clock = clock or SystemClock()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = await open_database(settings.resolved_database_url, clock)
        try:
            redis = await connect_redis(
                settings.redis_url, settings.data_dir, settings.redis_prefix
            )
        except BaseException:
            await db.close()
            raise
        plane = cls(settings, clock, db, redis, AgentClientPool(), _owner_id())
        try:
            await mirror_instance_id(redis.client, redis.keys, db.instance_id)
            plane._build(agent_token(settings))
        except BaseException:
            await plane.close()
            raise
        return plane

    def _build(self, token: str) -> None:
        s, directory = self.settings, PooledDirectory(self.pool, token)
        self.directory = directory
        self.monitor = Monitor(
            self.db, self.redis, directory, self.clock, owner=self.owner,
            finalizer_wakeup=self.finalize_wakeup, poll_wait_s=s.monitor_poll_wait_s,
        )
        self.alerts = self._build_alerts()
        self.outbox = self._build_outbox()
        parts: list[tuple[Controller, LoopConfig, Wakeup | None]] = [
            (Scheduler(self.db, self.clock, dispatch_wakeup=self.dispatch_wakeup),
             LoopConfig(s.scheduler_interval_s), None),
            (Dispatcher(self.db, self.redis, directory, self.clock,
                        max_queue_age_s=s.max_queue_age_s),
             LoopConfig(s.dispatcher_interval_s), self.dispatch_wakeup),
            (self.monitor, LoopConfig(s.monitor_interval_s, singleton=False), None),
            (Finalizer(self.db, self.redis, directory, self.clock, owner=self.owner,
                       outbox_wakeup=self.outbox_wakeup, webhook_max_age_s=s.webhook_max_age_s),
             LoopConfig(s.finalizer_interval_s), self.finalize_wakeup),
            (self.outbox, LoopConfig(s.outbox_interval_s), self.outbox_wakeup),
            (Maintenance(self.db, self.redis, self.clock, reclaim_grace_s=s.slot_reclaim_grace_s),
             LoopConfig(s.maintenance_interval_s), None),
        ]
        self.loops = [
            ControllerLoop(c, cfg, self.redis, self.clock, self.owner, wakeup, self.telemetry)
            for c, cfg, wakeup in parts
        ]

    def _build_alerts(self) -> AlertService:
        return build_alert_service(self.settings, self.db, self.clock,
                                   on_enqueued=self.outbox_wakeup.poke)

    def _build_outbox(self) -> OutboxSender:
        return build_outbox_sender(self.settings, self.db, self.clock, self.alerts,
                                   owner=self.owner, wakeup=self.outbox_wakeup,
                                   telemetry=self.telemetry)

    def api_context(self) -> ApiContext:
        assert self.directory is not None
        return ApiContext(
            db=self.db, redis=self.redis, settings=self.settings, clock=self.clock,
            directory=self.directory, dispatch_wakeup=self.dispatch_wakeup,
            controller_ticks=self.controller_ticks, telemetry=self.telemetry,
            alerts=self.alerts,
        )

    def controller_ticks(self) -> dict[str, int | None]:
        return {loop.name: loop.last_tick_ms for loop in self.loops}

    def start(self) -> None:
        for loop in self.loops:
            task = GuardedTask(f"controller:{loop.name}", loop.run)
            task.start()
            self.tasks.append(task)
        log.info("control plane %s started (%d controllers)", self.owner, len(self.loops))

    async def close(self) -> None:
        """Stop the loops, then close clients and stores. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        await stop_all(self.tasks)
        self.tasks.clear()
        if self.monitor is not None:
            await self.monitor.stop()
        if self.outbox is not None:
            await self.outbox.stop()
        await self.pool.aclose()
        await self.redis.close()
        await self.db.close()


def _owner_id() -> str:
    """Who holds a lease: host and pid, readable in Redis when debugging."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
