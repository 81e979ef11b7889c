"""The control plane's wiring: the one place that builds stores, clients and controllers and owns
startup and shutdown order.

Startup: open SQL (migrate, instance id), connect Redis (embedded by default), check both carry
the same instance id, then start the controller loops. The monitor's first pass re-attaches a
watcher to every agent, and each watcher's registry pass settles rows that finished while the
control plane was down (startup recovery). Before any loop starts, ``recover`` runs one reaper
pass (every tier at once). A reaper configuration whose grace or backstop a healthy finalization
could outlast is refused before anything is opened. Shutdown stops the loops in order, each
bounded, then closes the clients and the stores.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from functools import partial

from shepherd.agent_client.fleet_breaker import RedisBreaker
from shepherd.agent_client.pool import AgentClientPool
from shepherd.alerts.service import AlertService
from shepherd.api.context import ApiContext
from shepherd.api.hosting import LocalRuntimeHost
from shepherd.app.alerting import build_alert_service, build_outbox_sender
from shepherd.app.canary import build_canary
from shepherd.background import GuardedTask, stop_all
from shepherd.canary.service import CanaryService
from shepherd.clock import SystemClock
from shepherd.controllers.base import Controller, Wakeup
from shepherd.controllers.claimed import ClaimedRows
from shepherd.controllers.directory import PooledDirectory
from shepherd.controllers.dispatcher import Dispatcher
from shepherd.controllers.finalizer import Finalizer
from shepherd.controllers.fleet_alerts import FleetAlerts
from shepherd.controllers.loop import ControllerLoop, LoopConfig
from shepherd.controllers.maintenance import Maintenance
from shepherd.controllers.monitor import Monitor
from shepherd.controllers.outbox import OutboxSender
from shepherd.controllers.prober import Prober
from shepherd.controllers.reaper import Reaper, ReaperConfig
from shepherd.controllers.results import ResultWriter
from shepherd.controllers.scheduler import Scheduler
from shepherd.controllers.slot_recovery import SlotRecovery
from shepherd.controllers.triggers import WatchdogTriggers
from shepherd.controllers.watchdog import Watchdog, WatchdogConfig
from shepherd.core.circuit import CircuitPolicy
from shepherd.core.clock import Clock
from shepherd.core.finalization import CompletionBudget
from shepherd.core.reaper import ReaperPolicy, check_budget
from shepherd.core.retry import BackoffPolicy
from shepherd.core.watchdog import WatchdogPolicy
from shepherd.errors import ConfigError
from shepherd.log_throttle import LogThrottle
from shepherd.secrets import given_or_stored_token
from shepherd.services.event_hub import EventHub
from shepherd.services.event_sources import ExecutionTransitions, FleetEvents
from shepherd.settings import ENV_PREFIX, Settings
from shepherd.stores.redis.connection import RedisHandle, connect_redis
from shepherd.stores.redis.instance import mirror_instance_id
from shepherd.stores.redis.supervisor import EmbeddedSupervisor
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
    dispatcher: Dispatcher | None = None
    reaper: Reaper | None = None
    outbox: OutboxSender | None = None
    alerts: AlertService | None = None
    canary: CanaryService | None = None
    watchdog_triggers: WatchdogTriggers = field(default_factory=WatchdogTriggers)
    directory: PooledDirectory | None = None
    closed: bool = False
    telemetry: Telemetry = field(default_factory=lambda: Telemetry(process_metrics=True))
    breaker: RedisBreaker | None = None
    events: EventHub | None = None
    # Under ``up``: the local runtimes, which the API asks to follow a fleet apply.
    local_runtimes: LocalRuntimeHost | None = None

    @classmethod
    async def open(cls, settings: Settings, clock: Clock | None = None) -> ControlPlane:
        """Open the stores and build the controllers; ``start()`` sets them running."""
        clock = clock or SystemClock()
        reaper_config(settings)  # refused before anything is opened
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        telemetry = Telemetry(process_metrics=True)
        db = await open_database(settings.resolved_database_url, clock, telemetry=telemetry)
        try:
            redis = await connect_redis(
                settings.redis_url, settings.data_dir, settings.redis_prefix
            )
        except BaseException:
            await db.close()
            raise
        plane = cls(settings, clock, db, redis, AgentClientPool(), _owner_id(),
                    telemetry=telemetry)
        try:
            await mirror_instance_id(redis.client, redis.keys, db.instance_id)
            plane._build(agent_token(settings))
        except BaseException:
            await plane.close()
            raise
        return plane

    def _build(self, token: str) -> None:
        s = self.settings
        breaker = RedisBreaker(
            self.redis.circuits, self.redis.replicas, self.clock, replica=self.owner,
            policy=circuit_policy(s), telemetry=self.telemetry,
            # The prober heartbeats: its key must outlive three of its passes.
            presence_ttl_s=max(s.breaker_presence_ttl_s, 3 * s.breaker_probe_interval_s),
            events=self.db.fleet_events,
        )
        # Every agent call goes through the breaker: the pool is built around it, unused before.
        self.breaker, self.pool = breaker, AgentClientPool(breaker)
        directory = PooledDirectory(self.pool, token)
        self.directory = directory
        claimed = ClaimedRows()  # the dispatcher's claims, for the watchers' results
        self.monitor = Monitor(
            self.db, self.redis, directory, self.clock, owner=self.owner,
            finalizer_wakeup=self.finalize_wakeup, poll_wait_s=s.monitor_poll_wait_s,
            breaker=breaker, dispatch_wakeup=self.dispatch_wakeup, claimed=claimed,
            results=ResultWriter(self.db, self.redis, self.clock, backoff=retry_backoff(s),
                                 webhook_max_age_s=s.webhook_max_age_s,
                                 outbox_wakeup=self.outbox_wakeup)
            if s.results_from_events else None,
        )
        self.alerts = self._build_alerts()
        self.outbox = self._build_outbox()
        finalizer = Finalizer(
            self.db, self.redis, directory, self.clock, owner=self.owner,
            outbox_wakeup=self.outbox_wakeup, webhook_max_age_s=s.webhook_max_age_s,
            backoff=retry_backoff(s), telemetry=self.telemetry, budget=completion_budget(s),
            lease_ttl_ms=round(s.finalize_lease_ttl_s * 1000),
        )
        self.reaper = Reaper(
            self.db, self.redis, directory, self.clock, finisher=finalizer,
            watcher=self.monitor, owner=self.owner, config=reaper_config(s),
            dispatch_wakeup=self.dispatch_wakeup, outbox_wakeup=self.outbox_wakeup,
            telemetry=self.telemetry,
        )
        self.dispatcher = Dispatcher(
            self.db, self.redis, directory, self.clock, max_queue_age_s=s.max_queue_age_s,
            breaker=breaker, recovery=SlotRecovery(self.db, self.redis, self.clock,
                                                   self.telemetry),
            telemetry=self.telemetry, hand_over_in_background=True, claimed=claimed)
        parts: list[tuple[Controller, LoopConfig, Wakeup | None]] = [
            (Scheduler(self.db, self.clock, dispatch_wakeup=self.dispatch_wakeup),
             LoopConfig(s.scheduler_interval_s), None),
            (self.dispatcher, LoopConfig(s.dispatcher_interval_s), self.dispatch_wakeup),
            (self.monitor, LoopConfig(s.monitor_interval_s, singleton=False), None),
            (finalizer, LoopConfig(s.finalizer_interval_s), self.finalize_wakeup),
            (self.outbox, LoopConfig(s.outbox_interval_s), self.outbox_wakeup),
            (Maintenance(self.db, self.redis, self.clock, reclaim_grace_s=s.slot_reclaim_grace_s),
             LoopConfig(s.maintenance_interval_s), None),
            (Prober(self.db, breaker, directory, self.clock),
             LoopConfig(s.breaker_probe_interval_s, singleton=False), None),
            (Watchdog(self.db, self.redis, directory, self.clock, config=watchdog_config(s),
                      triggers=self.watchdog_triggers, finalizer_wakeup=self.finalize_wakeup,
                      dispatch_wakeup=self.dispatch_wakeup, telemetry=self.telemetry),
             LoopConfig(s.watchdog_interval_s), self.watchdog_triggers),
            (self.reaper, LoopConfig(s.reaper_interval_s), None),
            (FleetAlerts(self.db, self.redis, self.alerts, self.clock),
             LoopConfig(s.fleet_alerts_interval_s), None),
        ]
        self.canary = build_canary(s, self.db, self.redis, directory, self.alerts, self.clock,
                                   self.telemetry, {c.name: cfg.interval_s for c, cfg, _ in parts})
        if s.canary_enabled:
            parts.append((self.canary, LoopConfig(s.canary_interval_s), None))
        quiet = LogThrottle(logging.getLogger("shepherd.controllers"))  # one voice for all loops
        self.loops = [
            ControllerLoop(c, cfg, self.redis, self.clock, self.owner, wakeup, self.telemetry,
                           quiet)
            for c, cfg, wakeup in parts
        ]
        # Live events follow the stores, so viewers of any replica see every replica's changes.
        self.events = EventHub([ExecutionTransitions(self.db), FleetEvents(self.db)],
                               self.clock, s.events_poll_interval_s, telemetry=self.telemetry)

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
            alerts=self.alerts, events=self.events, local_runtimes=self.local_runtimes,
            canary=self.canary,
        )

    def controller_ticks(self) -> dict[str, int | None]:
        return {loop.name: loop.last_tick_ms for loop in self.loops}

    async def recover(self) -> None:
        """Startup recovery: one reaper pass, every tier, before any loop starts. A failure is
        logged; the reaper's loop runs the tiers again at its interval."""
        if self.reaper is None:
            return
        try:
            await self.reaper.run_startup()
        except Exception as exc:
            log.warning("startup recovery: the reaper's pass failed (%s: %s); its loop retries",
                        type(exc).__name__, exc)

    def start(self) -> None:
        if self.redis.embedded is not None:  # a dead embedded server is restarted, not mourned
            supervisor = EmbeddedSupervisor(self.redis.embedded)
            self.tasks.append(GuardedTask("embedded-redis", supervisor.run))
            self.tasks[-1].start()
        listener = GuardedTask("watchdog:requests", partial(self.watchdog_triggers.listen,
                                                            self.redis))
        for task in [listener, *(GuardedTask(f"controller:{loop.name}", loop.run)
                                 for loop in self.loops)]:
            task.start()
            self.tasks.append(task)
        if self.events is not None:
            follower = GuardedTask("live-events", self.events.run)
            follower.start()
            self.tasks.append(follower)
        log.info("control plane %s started (%d controllers)", self.owner, len(self.loops))

    async def close(self) -> None:
        """Stop the loops, then close clients and stores. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        await stop_all(self.tasks)
        self.tasks.clear()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self.monitor is not None:
            await self.monitor.stop()
        if self.outbox is not None:
            await self.outbox.stop()
        if self.breaker is not None:
            await self.breaker.withdraw()
        await self.pool.aclose()
        await self.redis.close()
        await self.db.close()


def circuit_policy(settings: Settings) -> CircuitPolicy:
    return CircuitPolicy(
        failure_threshold=settings.breaker_failure_threshold,
        cooldown_s=settings.breaker_cooldown_s,
        cooldown_max_s=settings.breaker_cooldown_max_s,
        dormant_after_probes=settings.breaker_dormant_after_probes,
        dormant_probe_interval_s=settings.breaker_dormant_probe_interval_s,
        quorum_window_s=settings.breaker_quorum_window_s,
    )
def watchdog_config(s: Settings) -> WatchdogConfig:
    policy = WatchdogPolicy(
        agent_lost_after_ms=round(s.watchdog_agent_lost_after_s * 1000),
        dispatch_grace_ms=round(s.watchdog_dispatch_grace_s * 1000),
        timeout_slack_ms=round(s.watchdog_timeout_slack_s * 1000),
        backoff=retry_backoff(s),
        handover_grace_ms=round(s.watchdog_handover_grace_s * 1000),
    )
    return WatchdogConfig(s.watchdog_interval_s, s.watchdog_probe_timeout_s, policy)


def completion_budget(s: Settings) -> CompletionBudget:
    return CompletionBudget(s.finalize_fetch_budget_s, s.finalize_store_budget_s,
                            s.finalize_ack_budget_s)


def reaper_config(s: Settings) -> ReaperConfig:
    """The reaper's configuration; a ``ConfigError`` when a healthy finalization could outlast
    its grace or its backstop (``core.reaper.check_budget``)."""
    policy = ReaperPolicy(
        finalize_grace_ms=round(s.reaper_finalize_grace_s * 1000),
        max_running_ms=(None if s.reaper_max_running_s is None
                        else round(s.reaper_max_running_s * 1000)),
        finalizer_liveness=s.reaper_finalizer_liveness,
    )
    problems = check_budget(policy, completion_budget(s))
    if problems:
        raise ConfigError("refusing to start, the reaper could end healthy finalizations: "
                          + "; ".join(f"{' / '.join(ENV_PREFIX + n.upper() for n in p.settings)}"
                                      f": {p.message}" for p in problems))
    return ReaperConfig(s.reaper_interval_s, policy, round(s.finalize_lease_ttl_s * 1000),
                        s.webhook_max_age_s)


def retry_backoff(s: Settings) -> BackoffPolicy:
    return BackoffPolicy(base_s=s.retry_backoff_base_s, max_s=s.retry_backoff_max_s)


def _owner_id() -> str:
    """Who holds a lease: host and pid, readable in Redis when debugging."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
