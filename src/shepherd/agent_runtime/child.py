"""Supervising one child: spawn it in its own process group, feed its input, keep its output,
enforce its timeout, and always reap it.

The run ends when the child itself exits (``process.py`` watches a pidfd), never when its output
closes. Then, in this order: count the input it left unread; signal what is left of its group
while the exited child still pins the group's id; reap it; give the group the kill grace, then
SIGKILL; read the output that is still buffered; and, only if the output is still held open,
name the processes outside the group that hold it (``leftovers.py``) and close it on them.

Guarantees: the child's whole group gets SIGTERM then, after the grace, SIGKILL (grandchildren
included) on timeout, terminate, shutdown — and after an ordinary exit, for whatever it left
behind; every spawned child is reaped on every path, so no zombie stays; a process that left the
group holds neither the run nor its slot open: it is reported on the result, not waited for.
Must not: judge the result. An exit code, an unread input or a leftover is recorded as it is; the
control plane decides what it means for the execution.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

import psutil

from shepherd.agent_client.protocol import RunState
from shepherd.agent_runtime.leftovers import find_pipe_holders
from shepherd.agent_runtime.process import ChildProcess, group_alive, signal_group
from shepherd.agent_runtime.record import LOG_FILE, RunRecord

log = logging.getLogger("shepherd.agent_runtime.child")
# How long a SIGKILLed group may take to vanish before the run is finished anyway.
KILL_WAIT_S = 1.0
# Polling a group that is on its way out: fast at first, never busy.
GROUP_POLL_FIRST_S = 0.005
GROUP_POLL_MAX_S = 0.05


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Child:
    """One execution's process, driven by ``run()``; ``terminate()`` may be called meanwhile."""

    def __init__(
        self, record: RunRecord, command: tuple[str, ...], input_text: str, env: dict[str, str],
        directory: Path, tail_bytes: int, kill_grace_s: float,
        on_change: Callable[[RunRecord], Awaitable[None]],
    ) -> None:
        self.record = record
        self._command = command
        self._input = input_text.encode("utf-8")
        self._env = env
        self._dir = directory
        self._tail_bytes = tail_bytes
        self._kill_grace_s = kill_grace_s
        self._on_change = on_change
        self._process: ChildProcess | None = None
        self._log: BinaryIO | None = None
        self.done = asyncio.Event()

    def spawn(self) -> None:
        """Start the process (or record why it could not start)."""
        try:
            self._process = ChildProcess.spawn(self._command, self._env, self._input,
                                               self._keep_output)
        except OSError as exc:
            self.record.started_at_ms = now_ms()
            self.record.finish(now_ms(), None, "spawn_failed", f"{self._command[0]}: {exc}")
            self.done.set()
            return
        self.record.pid = self._process.pid
        self.record.pid_create_time = _create_time(self._process.pid)
        self.record.started_at_ms = now_ms()
        self.record.state = RunState.RUNNING

    async def run(self) -> None:
        """Wait for the exit (or the timeout), then settle; finish the record whatever happens."""
        process = self._process
        if process is None:
            return
        try:
            try:
                await asyncio.wait_for(process.exited.wait(), self.record.timeout_s)
            except TimeoutError:
                self._flag("timed_out", f"timed out after {self.record.timeout_s} s")
                await self._stop(process)
        finally:
            if not process.exited.is_set():  # cancelled (shutdown): never leave it running
                self._flag("terminated", "runtime shut down")
                await self._stop(process)
            await self._settle(process)
            self.done.set()
        await self._on_change(self.record)

    async def terminate(self) -> None:
        process = self._process
        if process is not None and not process.exited.is_set():
            self._flag("terminated", "terminated on request")
            await self._stop(process)

    async def stop_unsupervised(self) -> None:
        """Stop and settle the child if ``run()`` never did (its task was cancelled before it
        started); a no-op for a child already settled."""
        process = self._process
        if process is None or self.done.is_set():
            return
        self._flag("terminated", "runtime shut down")
        await self._stop(process)
        await self._settle(process)
        self.done.set()

    async def _stop(self, process: ChildProcess) -> None:
        """SIGTERM to the group, SIGKILL after the grace; returns once the child has exited."""
        process.signal_group(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.exited.wait(), self._kill_grace_s)
        if not process.exited.is_set():
            process.signal_group(signal.SIGKILL)
            await process.exited.wait()

    async def _settle(self, process: ChildProcess) -> None:
        """The child has exited (unreaped): record what it left, clear its group, reap it."""
        finished_at_ms = now_ms()
        try:
            unread = process.finish_input()
            # The unreaped child pins the group id, so this reaches only what it left behind.
            process.signal_group(signal.SIGTERM)
            exit_code = process.reap()
            await self._clear_group(process.pid)
            if not process.drain_output():
                self._report_leftovers(process)
        finally:
            process.close()
            self._close_log()
        self.record.input_unread = unread > 0
        self.record.finish(finished_at_ms, exit_code)

    async def _clear_group(self, pgid: int) -> None:
        """Whatever the child left in its group had SIGTERM; SIGKILL it after the grace."""
        if not group_alive(pgid):
            return  # the ordinary case: one system call
        log.info("execution %s: the child left processes in its group; stopping them",
                 self.record.execution_id)
        if not await _group_gone(pgid, self._kill_grace_s):
            signal_group(pgid, signal.SIGKILL)
            await _group_gone(pgid, KILL_WAIT_S)

    def _report_leftovers(self, process: ChildProcess) -> None:
        inode = process.output_inode()
        holders = find_pipe_holders(inode, exclude=os.getpid()) if inode is not None else []
        self.record.leftovers = holders
        named = ", ".join(f"{h.pid} ({h.name})" for h in holders) or "unknown processes"
        log.warning("execution %s: left outside its process group, still holding its output: %s;"
                    " not waited for, not killed", self.record.execution_id, named)

    def _flag(self, error_class: str, error: str) -> None:
        self.record.error_class = self.record.error_class or error_class
        self.record.error = self.record.error or error

    def _keep_output(self, chunk: bytes) -> None:
        if self._log is None:  # opened on the first byte: a silent child costs no file
            self._dir.mkdir(parents=True, exist_ok=True)
            self._log = open(self._dir / LOG_FILE, "ab")  # noqa: SIM115 - closed in _settle
        self._log.write(chunk)
        tail = self.record.tail
        tail.extend(chunk)
        if len(tail) > self._tail_bytes:
            del tail[: len(tail) - self._tail_bytes]

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


async def _group_gone(pgid: int, within_s: float) -> bool:
    """Poll until no process is left in the group; False if some still are after ``within_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    pause = GROUP_POLL_FIRST_S
    while group_alive(pgid):
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(pause)
        pause = min(pause * 2, GROUP_POLL_MAX_S)
    return True


def _create_time(pid: int) -> float | None:
    """The child's start time as psutil reports it: with the pid, its identity after a restart."""
    with contextlib.suppress(psutil.Error):
        return float(psutil.Process(pid).create_time())
    return None
