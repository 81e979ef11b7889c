"""Monitor: one long-poll of ``/v1/events`` per agent; child exits become ``finalizing`` rows.

Each agent is watched by exactly one replica, the holder of ``lease:monitor:{agent}``, which it
gives back when it stops, so a restarted control plane watches at once. An exit whose event
carries its result (the runtime still holds it) is stored at once with the rest of its page,
``running -> finalizing -> success|failed`` in one transaction (``ResultWriter``), and acked on
the next poll (``?ack=``; in a request of its own to a runtime that predates that); any
other exit is CASed ``running -> finalizing`` and, only when it won, its slot is released and the
finalizer woken (``controllers.exits``). A registry pass (``sync_agent``) settles anything the event
stream missed: it runs when a watcher starts (so a control-plane restart re-attaches to every
running row), when the runtime's ``boot_id`` changes, and at once after the stream broke or a
connection was refused — preceded by a ``/health`` call whose ``boot_id`` says whether the runtime
restarted, so a restart is never noticed only when a long-poll on the old boot's cursor ends.
A changed ``boot_id``, a broken stream (once per outage), the agent answering again, or a running
row the runtime does not know are sent to the watchdog as reconcile requests. After a broken
stream the watcher waits as the agent's circuit says: a short backoff while it is closed, until
the next probe while it is open. ``attach`` starts a watcher at once for an agent whose running
rows nobody watches (the reaper's tier 1), and keeps it while the agent has running rows, even a
disabled one. A restarted runtime is an ``agent.changed`` fleet event (runtime_restarted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from functools import partial

from shepherd.agent_client.breaker import BreakerHook, NullBreaker
from shepherd.agent_client.client import AgentClient
from shepherd.agent_client.protocol import (
    MAX_POLL_ACKS,
    EventKind,
    ExecutionState,
    RunState,
    RuntimeEvent,
)
from shepherd.background import GuardedTask
from shepherd.controllers.base import AGENTS_REREAD_S, RecentRenewals, Wakeup
from shepherd.controllers.claimed import ClaimedRows
from shepherd.controllers.cycle import run_each
from shepherd.controllers.directory import AgentDirectory
from shepherd.controllers.exits import Exit, settle_exit
from shepherd.controllers.results import ResultWriter, ack_results
from shepherd.core.backoff import compute_backoff
from shepherd.core.clock import Clock
from shepherd.core.fleet_events import AgentChange, agent_changed
from shepherd.core.models import Agent, Execution
from shepherd.core.status import ExecutionStatus
from shepherd.errors import AgentError, AgentNotFound, ExecutionNotFound, StoreError
from shepherd.log_throttle import LogThrottle
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database

log = logging.getLogger("shepherd.controllers.monitor")
ACTOR = "monitor"
# A broken stream is retried at once-ish, then backs off to two probes a second while the
# runtime stays away (a refused connect costs nothing); an open circuit makes it wait for the
# next probe instead. A restarted runtime is seen within half a second of answering.
RETRY_BASE_S = 0.1
RETRY_MAX_S = 0.5
# The stream's position (and the agent's "last seen") goes to Redis at most this often while a
# watcher keeps its lease; an idle poll answers far less often than that.
CURSOR_SAVE_S = 0.25


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
        breaker: BreakerHook | None = None,
        dispatch_wakeup: Wakeup | None = None,
        results: ResultWriter | None = None,
        claimed: ClaimedRows | None = None,
    ) -> None:
        self._db = db
        self._claimed = claimed if claimed is not None else ClaimedRows()
        self._results = results
        self._breaker = breaker or NullBreaker()
        self._redis = redis
        self._directory = directory
        self._clock = clock
        self._owner = owner
        self._finalizer_wakeup = finalizer_wakeup
        self._dispatch_wakeup = dispatch_wakeup or Wakeup()
        self._poll_wait_s = poll_wait_s
        self._watchers: dict[str, GuardedTask] = {}
        self._attached: set[str] = set()  # watched on request while they have running rows
        self._renewals = RecentRenewals()
        self._cursors: dict[str, tuple[int, str | None]] = {}  # per agent, while leased
        self._cursor_saved: dict[str, tuple[float, str]] = {}  # when, for which boot
        # Results stored since the agent's last poll, acked on the next one; and the runtimes
        # (by agent, for their current boot) known to predate acks on polls.
        self._acks: dict[str, list[str]] = {}
        self._acks_apart: set[str] = set()
        self._quiet = LogThrottle(log)

    async def run_once(self) -> MonitorReport:
        """Keep one watcher per enabled agent that has a runtime URL, and per attached agent."""
        agents = await self._db.agents.list()
        wanted: set[str] = {a.name for a in agents if a.enabled and a.url}
        self._attached -= wanted  # watched anyway
        if self._attached:
            running = await self._db.executions.list_by_status(ExecutionStatus.RUNNING)
            self._attached &= {r.agent for r in running} & {a.name for a in agents if a.url}
            wanted |= self._attached
        report = MonitorReport()
        for name in sorted(wanted - self._watchers.keys()):
            self._start_watcher(name)
            report.started.append(name)
        for name in sorted(self._watchers.keys() - wanted):
            await self._watchers.pop(name).stop()
            report.stopped.append(name)
        report.watching = sorted(self._watchers)
        return report

    async def attach(self, name: str) -> bool:
        """Watch ``name`` now; False when this replica already does (its watcher takes the
        lease as soon as it is free)."""
        self._attached.add(name)
        if name in self._watchers:
            return False
        self._start_watcher(name)
        return True

    def _start_watcher(self, name: str) -> None:
        task = GuardedTask(f"monitor:{name}", partial(self._watch, name))
        task.start()
        self._watchers[name] = task

    async def stop(self) -> None:
        for name in list(self._watchers):
            await self._watchers.pop(name).stop()

    async def sync_agent(self, agent: Agent, client: AgentClient) -> SyncReport:
        """Settle SQL ``running`` rows of ``agent`` against the runtime's registry."""
        registry = await client.list_executions()
        known = {e.execution_id: e for e in registry.executions}
        report = SyncReport()
        exited = []
        for row in await self._db.executions.list_by_status(ExecutionStatus.RUNNING, agent.name):
            entry = known.get(row.id)
            if entry is None:
                report.unknown.append(row.id)
            elif entry.state is RunState.FINISHED:
                exited.append(entry)
        # Side by side: after a runtime restart every one of its runs exited at once.
        settled, _ = await run_each(exited, partial(self._settle, agent),
                                    lambda e: e.execution_id, stage="settle", log=log)
        report.settled = sorted(eid for eid, won in settled.items() if won)
        finished = [e.execution_id for e in known.values() if e.state is RunState.FINISHED]
        statuses = await self._db.executions.statuses(finished)
        for execution_id in finished:
            if execution_id in statuses and statuses[execution_id].is_terminal:
                with contextlib.suppress(ExecutionNotFound):  # the finalizer acked it first
                    await client.ack(execution_id)
                report.acked.append(execution_id)
        if report.unknown:
            await self._request_reconcile(agent.name, f"unknown to runtime: {report.unknown}")
        return report

    async def _settle(self, agent: Agent, state: ExecutionState | RuntimeEvent) -> bool:
        """``running -> finalizing`` for a child that exited; the slot goes only if we won."""
        finished_at = state.finished_at_ms if isinstance(state, ExecutionState) else state.at_ms
        exit = Exit(agent.name, state.execution_id, finished_at, state.exit_code,
                    state.error_class)
        won = await settle_exit(self._db, self._redis, exit, actor=ACTOR,
                                now_ms=self._clock.now_ms())
        if won:
            # The exit freed a slot: the backlog behind it need not wait for a dispatcher tick.
            self._finalizer_wakeup.poke()
            self._dispatch_wakeup.poke()
        return won

    async def _watch(self, name: str) -> None:
        lease = self._redis.keys.monitor_lease(name)
        try:
            await self._follow(name, lease, int((self._poll_wait_s + 10) * 1000))
        finally:
            self._forget_cursor(name)
            self._acks.pop(name, None)  # the next watcher's registry pass acks what is stored
            # Stopped or done: give the lease back so the next watcher need not wait its TTL.
            self._renewals.lost(lease)
            await asyncio.shield(self._release(lease))

    async def _follow(self, name: str, lease: str, ttl_ms: int) -> None:
        needs_sync, failures = True, 0
        while True:
            try:
                if not await self._hold(name, lease, ttl_ms):
                    await asyncio.sleep(ttl_ms / 2000)
                    continue
                agent = await self._db.agents.recent_one(name, AGENTS_REREAD_S)
                client = self._directory.client_for(agent)
                if client is None:
                    return
                needs_sync, failures = await self._poll_reporting(agent, client, needs_sync,
                                                                  failures)
            except AgentNotFound:
                return
            except StoreError as exc:  # retried quietly: one line a minute for every watcher
                self._quiet.log("store", logging.WARNING, "monitor: a store is unavailable, "
                                "retrying (%s: %s)", name, exc.message)
                needs_sync = True
                await asyncio.sleep(RETRY_MAX_S)

    async def _poll_reporting(
        self, agent: Agent, client: AgentClient, needs_sync: bool, failures: int
    ) -> tuple[bool, int]:
        """One poll, after a health check and registry pass when one is owed; returns whether a
        pass is still owed and the failures in a row. An unreachable runtime is logged (and sent
        to the watchdog) when it becomes so and when it comes back, not at every retry."""
        try:
            if needs_sync:
                await self._resync(agent, client, back=failures > 0)
            needs_sync = await self._poll(agent, client)
        except AgentError as exc:
            if failures == 0:
                log.warning("monitor %s: runtime unreachable, retrying: %s", agent.name, exc)
                await self._request_reconcile(agent.name, f"stream broken: {exc}")
            failures += 1
            pause = compute_backoff(failures - 1, RETRY_BASE_S, RETRY_MAX_S, 0.5, random.random())
            await asyncio.sleep(await self._breaker.retry_after_s(agent.name, pause))
            return True, failures
        if failures:
            log.warning("monitor %s: runtime reachable again", agent.name)
        if self._quiet.clear("store"):
            log.warning("monitor: the stores answer again")
        return needs_sync, 0

    async def _resync(self, agent: Agent, client: AgentClient, back: bool) -> None:
        """After a start, a broken stream or a refused connection: a health check (did the
        runtime restart?) and a registry pass, at once."""
        health = await client.health()
        _, boot_id = await self._load_cursor(agent.name)
        if health.boot_id != boot_id:
            if boot_id is not None:
                log.warning("monitor %s: runtime restarted (boot %s -> %s)", agent.name, boot_id,
                            health.boot_id)
                await self._request_reconcile(agent.name, "runtime boot_id changed")
                await self._db.fleet_events.record(agent_changed(
                    agent.name, AgentChange.RUNTIME_RESTARTED, "monitor", boot_id=health.boot_id,
                    previous_boot_id=boot_id))
            self._acks_apart.discard(agent.name)  # an upgraded runtime may take them now
            await self._record_boot(agent.name, client)  # before the cursor: retried if it fails
            await self._save_cursor(agent.name, 0, health.boot_id)
        elif back:
            await self._request_reconcile(agent.name, "agent reachable again")
        await self.sync_agent(agent, client)

    async def _release(self, lease: str) -> None:
        try:
            await self._redis.leases.release(lease, self._owner)
        except StoreError as exc:
            log.warning("monitor: could not release %s, it will expire: %s", lease, exc)

    async def _hold(self, name: str, lease: str, ttl_ms: int) -> bool:
        """Keep or take the agent's monitor lease. Renew first (unless this watcher renewed it
        within ``LEASE_RECHECK_S``, for the page before): a watcher restarted after a crash
        still owns its lease and must not wait a whole TTL for it."""
        if self._renewals.fresh(lease):  # renewed a moment ago, for the page before
            return True
        leases, asked_at = self._redis.leases, time.monotonic()
        if await leases.renew(lease, self._owner, ttl_ms):
            self._renewals.held(lease, asked_at)
            return True
        self._renewals.lost(lease)
        self._forget_cursor(name)  # another watcher may have moved it meanwhile
        if await leases.acquire(lease, self._owner, ttl_ms):
            self._renewals.held(lease, asked_at)
            return True
        return False

    async def _poll(self, agent: Agent, client: AgentClient) -> bool:
        """One long-poll; returns whether a registry pass is owed (the runtime restarted). It
        carries the acks of the results stored since the last one (``_acks_riding``)."""
        seq, boot_id = await self._load_cursor(agent.name)
        riding = await self._acks_riding(agent.name, client)
        # Woken by exits only: a start needs nothing from the monitor.
        page = await client.events(after=seq, wait_s=self._poll_wait_s, until_exit=True,
                                   ack=riding)
        if riding and page.acked is None:  # the runtime predates acks on polls
            self._acks_apart.add(agent.name)
            await ack_results(client, agent.name, riding)
        if page.boot_id != boot_id:
            return True  # the resync sees the new boot_id and reads that boot from the start
        exits = [e for e in page.events if e.kind is EventKind.EXITED]
        if exits:
            # As it is now, not as the long-poll began: a webhook URL or success codes set
            # meanwhile apply to these results, as they would in the finalizer (set on another
            # replica, within AGENTS_REREAD_S). The rows of the results the page carries are
            # those this process claimed (``ClaimedRows``); any other is read at the same time
            # (two reads, one wait).
            carried = [e.result for e in exits if e.result is not None]
            rows: list[Execution] = []
            missing: list[str] = []
            if carried and self._results is not None:
                rows, missing = self._claimed.take(r.execution_id for r in carried)
            if missing:
                agent, read = await asyncio.gather(
                    self._db.agents.recent_one(agent.name, AGENTS_REREAD_S),
                    self._db.executions.find_many(missing))
                rows += read
            else:
                agent = await self._db.agents.recent_one(agent.name, AGENTS_REREAD_S)
            await self._settle_page(agent, exits, carried, rows)
        await self._save_cursor(agent.name, page.last_seq, page.boot_id)
        return False

    async def _settle_page(
        self, agent: Agent, exits: list[RuntimeEvent], carried: list[ExecutionState],
        rows: list[Execution],
    ) -> None:
        """Exits that carry their result (``carried``, whose ``rows`` were read) are stored in
        one transaction (``ResultWriter``) and acked on the next poll; the others, and any the
        batch did not take, become ``finalizing`` for the finalizer."""
        done: set[str] = set()
        if carried and self._results is not None:
            # Slots freed: the backlog need not wait for a tick, nor for the ack.
            done = await self._results.finish_exits(agent, carried, ACTOR,
                                                    freed=self._dispatch_wakeup, rows=rows)
            self._acks.setdefault(agent.name, []).extend(sorted(done))  # on the next poll
        for event in exits:
            if event.execution_id not in done:
                await self._settle(agent, event)

    async def _acks_riding(self, agent: str, client: AgentClient) -> list[str]:
        """The acks the next poll carries; those beyond ``MAX_POLL_ACKS``, or all of them for a
        runtime that takes none on a poll, are sent now in a request of their own. Acks lost
        with a failed poll are made good by the registry pass that follows it, which acks
        every stored result its runtime still holds."""
        acks = self._acks.pop(agent, [])
        riding, apart = ([], acks) if agent in self._acks_apart else (
            acks[:MAX_POLL_ACKS], acks[MAX_POLL_ACKS:])
        if apart:
            await ack_results(client, agent, apart)
        return riding

    async def _load_cursor(self, agent: str) -> tuple[int, str | None]:
        """Where the stream stands: as this watcher last saved it while it kept its lease
        (nobody else writes it then), else as Redis says."""
        cursor = self._cursors.get(agent)
        if cursor is None:
            cursor = self._cursors[agent] = await self._redis.cursors.load(agent)
        return cursor

    async def _record_boot(self, agent: str, client: AgentClient) -> None:
        """When the runtime started (its uptime, asked once per boot), for the fleet page."""
        health = await client.health()
        await self._redis.cursors.record_boot(
            agent, self._clock.now_ms() - round(health.uptime_s * 1000))

    async def _save_cursor(self, agent: str, seq: int, boot_id: str) -> None:
        """Where the stream stands, in memory at once and in Redis at most every
        ``CURSOR_SAVE_S`` (and at once for a new boot): a watcher woken for every exit must not
        wait on a write before its next poll. What another watcher resumes from after a
        takeover may be that much behind: it reads those events again, and their results are
        stored and acked already (their CAS loses, an acked result is gone)."""
        saved = self._cursor_saved.get(agent)
        if (saved is not None and saved[1] == boot_id
                and time.monotonic() - saved[0] < CURSOR_SAVE_S):
            self._cursors[agent] = (seq, boot_id)
            return
        # Every saved poll stamps seen_at_ms: the fleet page's "last seen".
        self._forget_cursor(agent)  # unknown until saved: a failed save reads Redis again
        await self._redis.cursors.save(agent, seq, boot_id, self._clock.now_ms())
        self._cursors[agent] = (seq, boot_id)
        self._cursor_saved[agent] = (time.monotonic(), boot_id)

    def _forget_cursor(self, agent: str) -> None:
        """Where the stream stands is Redis's to say again, and the next save writes it."""
        self._cursors.pop(agent, None)
        self._cursor_saved.pop(agent, None)

    async def _request_reconcile(self, agent: str, why: str) -> None:
        await self._redis.reconcile.request(agent, why, self._clock.now_ms())
