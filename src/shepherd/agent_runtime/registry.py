"""The runtime's registry: every execution it accepted, until the control plane acks it.

Guarantees: a start is idempotent on the execution id (the same id never spawns a second child);
every record is persisted (``journal.py``) at each change of state; finished records stay until
acked or until ``retention_s`` after they finished; on startup, records a previous boot left
``running`` are settled at once — every surviving child (same pid and create time) has its group
SIGKILLed, all together, without waiting — and reported as ``runtime_restarted``, with an
``exited`` event in the new boot, so the runtime listens straight away; a background task then
confirms they are gone. Acking a running execution is refused (``InvalidTransition``):
forgetting it would orphan a live child. Children start with the environment of
``environment.py``, never the runtime's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time

import psutil

from shepherd.agent_client.protocol import EventKind, RunState, StartRequest
from shepherd.agent_runtime.child import Child, now_ms
from shepherd.agent_runtime.config import RuntimeConfig
from shepherd.agent_runtime.environment import (
    base_environment,
    child_environment,
    host_variables,
)
from shepherd.agent_runtime.events import EventLog
from shepherd.agent_runtime.journal import RecordJournal
from shepherd.agent_runtime.process import signal_group
from shepherd.agent_runtime.record import RunRecord, execution_dir
from shepherd.errors import ExecutionNotFound, InvalidTransition

log = logging.getLogger("shepherd.agent_runtime.registry")
# SIGKILL takes effect at once; this only bounds how long the runtime looks for stragglers (a
# process in uninterruptible sleep) before it says so.
SURVIVOR_CONFIRM_S = 5.0
SURVIVOR_POLL_S = 0.1


class RunRegistry:
    def __init__(self, config: RuntimeConfig, boot_id: str, events: EventLog) -> None:
        self._config = config
        self.boot_id = boot_id
        self._events = events
        self._records: dict[str, RunRecord] = {}
        self._journal = RecordJournal(config.executions_dir)
        self._children: dict[str, Child] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._base_env = base_environment(host_variables(os.environ), config.agent_env)

    # -- lifecycle ----------------------------------------------------------------------------

    async def recover(self) -> None:
        """Load what a previous boot left; settle the runs it left running, without waiting.
        Opens the journal: call it once, before anything else."""
        survivors: list[psutil.Process] = []
        for record in self._journal.open():
            if record.state is not RunState.FINISHED:
                survivor = _kill_survivor(record)
                if survivor is not None:
                    survivors.append(survivor)
                record.finish(now_ms(), None, "runtime_restarted",
                              "the runtime restarted while the child ran")
                self._journal.save(record)
                await self._events.emit(EventKind.EXITED, record.execution_id,
                                        record.finished_at_ms or now_ms(), None,
                                        record.error_class)
            self._records[record.execution_id] = record
        if survivors:
            log.info("killed the groups of %d child(ren) left running by a previous boot",
                     len(survivors))
            self._track(asyncio.create_task(_confirm_gone(survivors), name="survivors"))

    async def shutdown(self) -> None:
        """Terminate every running child (TERM, then KILL after the grace) and persist it."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # A task cancelled before its first step never ran its cleanup: stop those children here.
        for child in list(self._children.values()):
            await child.stop_unsupervised()
        for record in self._records.values():
            self._journal.save(record)

    # -- operations ---------------------------------------------------------------------------

    async def start(self, request: StartRequest) -> RunRecord:
        async with self._lock:
            known = self._records.get(request.execution_id)
            if known is not None:
                return known
            record = RunRecord(request.execution_id, request.attempt, request.timeout_s,
                               self.boot_id)
            self._records[record.execution_id] = record
            child = Child(record, self._config.command, request.input, self._env(request),
                          execution_dir(self._config.executions_dir, record.execution_id),
                          self._config.tail_bytes, self._config.kill_grace_s, self._finished)
            child.spawn()
            self._journal.save(record)
        if record.state is RunState.RUNNING:
            self._children[record.execution_id] = child
            await self._events.emit(EventKind.STARTED, record.execution_id,
                                    record.started_at_ms or now_ms())
            self._track(asyncio.create_task(child.run(), name=f"child:{record.execution_id}"))
        else:
            await self._finished(record)
        return record

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finished(self, record: RunRecord) -> None:
        self._children.pop(record.execution_id, None)
        if self._records.get(record.execution_id) is record:  # an ack may have come first
            self._journal.save(record)
        await self._events.emit(EventKind.EXITED, record.execution_id,
                                record.finished_at_ms or now_ms(), record.exit_code,
                                record.error_class)

    def get(self, execution_id: str) -> RunRecord:
        self._expire()
        record = self._records.get(execution_id)
        if record is None:
            raise ExecutionNotFound(f"execution {execution_id} is unknown to this runtime")
        return record

    def all(self) -> list[RunRecord]:
        self._expire()
        return list(self._records.values())

    async def wait_finished(self, execution_id: str, wait_s: float) -> RunRecord:
        record = self.get(execution_id)
        child = self._children.get(execution_id)
        if child is not None and wait_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(child.done.wait(), wait_s)
        return record

    async def terminate(self, execution_id: str) -> bool:
        """True when a running child was terminated; False when it had already finished."""
        record = self.get(execution_id)
        child = self._children.get(execution_id)
        if child is None or record.state is RunState.FINISHED:
            return False
        await child.terminate()
        await child.done.wait()
        return True

    def finished(self, execution_id: str) -> RunRecord | None:
        """The record of a finished run this runtime still holds (None once acked or expired)."""
        record = self._records.get(execution_id)
        return record if record is not None and record.state is RunState.FINISHED else None

    def ack_many(self, execution_ids: list[str]) -> tuple[list[str], list[str]]:
        """Forget the finished ones; returns (acked or already unknown, still running)."""
        acked, running, finished = [], [], []
        for execution_id in execution_ids:
            record = self._records.get(execution_id)
            if record is None:  # acked before, or never here: nothing on disk to remove
                acked.append(execution_id)
            elif record.state is RunState.FINISHED:
                finished.append(execution_id)
                acked.append(execution_id)
            else:
                running.append(execution_id)
        self._forget(finished)
        return acked, running

    def ack(self, execution_id: str) -> None:
        """Forget a finished execution; acking a running one is refused, never a silent no-op."""
        if self.get(execution_id).state is not RunState.FINISHED:
            raise InvalidTransition(f"execution {execution_id} is still running; nothing to ack")
        self._forget([execution_id])

    def running_count(self) -> int:
        return len(self._children)

    def _forget(self, execution_ids: list[str]) -> None:
        """Drop the records (one journal line for them all) and the output logs of those that
        wrote any (a silent child has no directory)."""
        for execution_id in execution_ids:
            record = self._records.pop(execution_id, None)
            if record is None or record.tail:
                shutil.rmtree(execution_dir(self._config.executions_dir, execution_id),
                              ignore_errors=True)
        self._journal.forget(execution_ids)

    async def sweep_forever(self, interval_s: float) -> None:
        """Drop expired results even when nobody reads the registry (run as a guarded task)."""
        while True:
            await asyncio.sleep(interval_s)
            self._expire()

    def _expire(self) -> None:
        cutoff = now_ms() - int(self._config.retention_s * 1000)
        finished = sorted(
            (r for r in self._records.values() if r.state is RunState.FINISHED),
            key=lambda r: r.finished_at_ms or 0,
        )
        excess = max(0, len(finished) - self._config.max_retained)
        self._forget([record.execution_id for index, record in enumerate(finished)
                      if index < excess or (record.finished_at_ms or 0) < cutoff])

    def _env(self, request: StartRequest) -> dict[str, str]:
        return child_environment(self._base_env, execution_id=request.execution_id,
                                 attempt=request.attempt, agent=self._config.name)


def _kill_survivor(record: RunRecord) -> psutil.Process | None:
    """SIGKILL the group of a child a dead runtime left running, if it is still that child."""
    if record.pid is None:
        return None
    try:
        process = psutil.Process(record.pid)
        same = record.pid_create_time is not None and abs(
            process.create_time() - record.pid_create_time) < 0.01
    except psutil.Error:
        return None
    if not same:
        return None
    log.info("killing the group of %s (pid %d) left by a previous boot",
             record.execution_id, record.pid)
    signal_group(record.pid, signal.SIGKILL)
    return process


async def _confirm_gone(survivors: list[psutil.Process]) -> None:
    """Log any survivor still alive a while after its SIGKILL (a zombie counts as gone: it is
    dead, and reaping it is its parent's business, not this runtime's)."""
    deadline = time.monotonic() + SURVIVOR_CONFIRM_S
    alive = survivors
    while alive and time.monotonic() < deadline:
        await asyncio.sleep(SURVIVOR_POLL_S)
        alive = [p for p in alive if _alive(p)]
    for process in alive:
        log.warning("pid %d, left by a previous boot, is still alive after SIGKILL", process.pid)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def zombie_count() -> int:
    me = psutil.Process()
    count = 0
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.status() == psutil.STATUS_ZOMBIE:
                count += 1
    return count


def uptime_s(started_monotonic: float) -> float:
    return time.monotonic() - started_monotonic
