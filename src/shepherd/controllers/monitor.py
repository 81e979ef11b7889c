"""Monitor: one long-poll of ``/v1/events`` per agent; child exits become ``finalizing`` rows.

Each agent is watched by exactly one replica, the holder of ``lease:monitor:{agent}``. On a child
exit the watcher CASes ``running -> finalizing`` and, only when it won, releases the slot and
wakes the finalizer. A registry pass (``sync_agent``) settles anything the event stream missed:
it runs when a watcher starts (so a control-plane restart re-attaches to every running row), when
the runtime's ``boot_id`` changes, and after the stream broke. A changed ``boot_id``, a broken
stream, or a running row the runtime does not know are recorded on the agent's cursor hash
(``reconcile_requested_at_ms``) for the reconciler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from functools import partial

from shepherd.agent_client.client import AgentClient
from shepherd.agent_client.protocol import EventKind, ExecutionState, RunState, RuntimeEvent
from shepherd.background import GuardedTask
from shepherd.controllers.base import Wakeup
from shepherd.controllers.directory import AgentDirectory
from shepherd.core.clock import Clock
from shepherd.core.models import Agent, TransitionFields
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.errors import AgentError, AgentNotFound, ExecutionNotFound, StoreError
from shepherd.log_throttle import LogThrottle
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database

log = logging.getLogger("shepherd.controllers.monitor")
ACTOR = "monitor"
# Seconds a broken stream waits before it tries again; the breaker will own this later.
RETRY_AFTER_ERROR_S = 1.0


@dataclass(slots=True)
class SyncReport:
    settled: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)


@dataclass(slots=True)
class MonitorReport:
    watching: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)


class Monitor:
    name = "monitor"

    def __init__(
        self,
        db: Database,
        redis: RedisHandle,
        directory: AgentDirectory,
        clock: Clock,
        *,
        owner: str,
        finalizer_wakeup: Wakeup,
        poll_wait_s: float = 20.0,
    ) -> None:
        self._db = db
        self._redis = redis
        self._directory = directory
        self._clock = clock
        self._owner = owner
        self._finalizer_wakeup = finalizer_wakeup
        self._poll_wait_s = poll_wait_s
        self._watchers: dict[str, GuardedTask] = {}
        self._quiet = LogThrottle(log)
        self._unreachable: set[str] = set()  # agents whose runtime was last seen unreachable

    async def run_once(self) -> MonitorReport:
        """Keep one watcher per enabled agent that has a runtime URL."""
        wanted: set[str] = {a.name for a in await self._db.agents.list() if a.enabled and a.url}
        report = MonitorReport()
        for name in sorted(wanted - self._watchers.keys()):
            task = GuardedTask(f"monitor:{name}", partial(self._watch, name))
            task.start()
            self._watchers[name] = task
            report.started.append(name)
        for name in sorted(self._watchers.keys() - wanted):
            await self._watchers.pop(name).stop()
            report.stopped.append(name)
        report.watching = sorted(self._watchers)
        return report

    async def stop(self) -> None:
        for name in list(self._watchers):
            await self._watchers.pop(name).stop()

    async def sync_agent(self, agent: Agent, client: AgentClient) -> SyncReport:
        """Settle SQL ``running`` rows of ``agent`` against the runtime's registry."""
        registry = await client.list_executions()
        known = {e.execution_id: e for e in registry.executions}
        report = SyncReport()
        for row in await self._db.executions.list_by_status(ExecutionStatus.RUNNING, agent.name):
            entry = known.get(row.id)
            if entry is None:
                report.unknown.append(row.id)
            elif entry.state is RunState.FINISHED and await self._settle(agent, entry):
                report.settled.append(row.id)
        for entry in known.values():
            if entry.state is RunState.FINISHED and await self._is_terminal(entry.execution_id):
                with contextlib.suppress(ExecutionNotFound):  # the finalizer acked it first
                    await client.ack(entry.execution_id)
                report.acked.append(entry.execution_id)
        if report.unknown:
            await self._request_reconcile(agent.name, f"unknown to runtime: {report.unknown}")
        return report

    async def _is_terminal(self, execution_id: str) -> bool:
        row = await self._db.executions.find(execution_id)
        return row is not None and row.status.is_terminal

    async def _settle(self, agent: Agent, state: ExecutionState | RuntimeEvent) -> bool:
        """``running -> finalizing`` for a child that exited; the slot goes only if we won."""
        now = self._clock.now_ms()
        finished_at = state.finished_at_ms if isinstance(state, ExecutionState) else state.at_ms
        won = await self._db.executions.transition(
            state.execution_id, ExecutionStatus.FINALIZING, Cause.CHILD_EXITED,
            actor=ACTOR, now_ms=now,
            fields=TransitionFields(
                finished_at_ms=finished_at or now,
                exit_code=state.exit_code,
                error_class=state.error_class,
            ),
        )
        if won:
            await self._redis.slots.release(agent.name, state.execution_id)
            self._finalizer_wakeup.poke()
        return won

    async def _watch(self, name: str) -> None:
        lease = self._redis.keys.monitor_lease(name)
        ttl_ms = int((self._poll_wait_s + 10) * 1000)
        needs_sync = True
        while True:
            try:
                if not await self._hold(lease, ttl_ms):
                    await asyncio.sleep(ttl_ms / 2000)
                    continue
                agent = await self._db.agents.get(name)
                client = self._directory.client_for(agent)
                if client is None:
                    return
                needs_sync = await self._poll_reporting(agent, client, needs_sync)
            except AgentNotFound:
                return
            except StoreError as exc:  # retried quietly: one line a minute for every watcher
                self._quiet.log("store", logging.WARNING, "monitor: a store is unavailable, "
                                "retrying (%s: %s)", name, exc.message)
                needs_sync = True
                await asyncio.sleep(RETRY_AFTER_ERROR_S)

    async def _poll_reporting(self, agent: Agent, client: AgentClient, needs_sync: bool) -> bool:
        """One poll; an unreachable runtime is logged when it becomes so and when it comes back,
        not at every retry."""
        try:
            needs_sync = await self._poll(agent, client, needs_sync)
        except AgentError as exc:
            if agent.name not in self._unreachable:
                self._unreachable.add(agent.name)
                log.warning("monitor %s: runtime unreachable, retrying every %.0f s: %s",
                            agent.name, RETRY_AFTER_ERROR_S, exc)
            await self._request_reconcile(agent.name, f"stream broken: {exc}")
            await asyncio.sleep(RETRY_AFTER_ERROR_S)
            return True
        if agent.name in self._unreachable:
            self._unreachable.discard(agent.name)
            log.warning("monitor %s: runtime reachable again", agent.name)
        if self._quiet.clear("store"):
            log.warning("monitor: the stores answer again")
        return needs_sync

    async def _hold(self, lease: str, ttl_ms: int) -> bool:
        """Keep or take the agent's monitor lease. Renew first: a watcher restarted after a
        crash still owns its lease and must not wait a whole TTL for it."""
        leases = self._redis.leases
        if await leases.renew(lease, self._owner, ttl_ms):
            return True
        return await leases.acquire(lease, self._owner, ttl_ms)

    async def _poll(self, agent: Agent, client: AgentClient, needs_sync: bool) -> bool:
        """One long-poll; returns whether a registry pass is still owed."""
        seq, boot_id = await self._load_cursor(agent.name)
        page = await client.events(after=seq, wait_s=self._poll_wait_s)
        if page.boot_id != boot_id:
            if boot_id is not None:
                log.warning("monitor %s: runtime restarted (boot %s -> %s)", agent.name, boot_id,
                            page.boot_id)
                await self._request_reconcile(agent.name, "runtime boot_id changed")
            await self._save_cursor(agent.name, 0, page.boot_id)
            return True  # read the new boot's events from the start, then sync
        if needs_sync:
            await self.sync_agent(agent, client)
        for event in page.events:
            if event.kind is EventKind.EXITED:
                await self._settle(agent, event)
        await self._save_cursor(agent.name, page.last_seq, page.boot_id)
        return False

    async def _load_cursor(self, agent: str) -> tuple[int, str | None]:
        return await self._redis.cursors.load(agent)

    async def _save_cursor(self, agent: str, seq: int, boot_id: str) -> None:
        await self._redis.cursors.save(agent, seq, boot_id)

    async def _request_reconcile(self, agent: str, why: str) -> None:
        await self._redis.cursors.request_reconcile(agent, self._clock.now_ms(), why)
