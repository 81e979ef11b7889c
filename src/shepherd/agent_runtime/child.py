"""Supervising one child: spawn it in its own process group, feed its input, keep its output,
enforce its timeout, and always reap it.

Guarantees: the child's whole group gets SIGTERM then, after the grace, SIGKILL (grandchildren
included) on timeout or terminate; the child is awaited on every path, so no zombie is left; a
child that exits before reading its input is ``child_exited_early``, never an exception.
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

import psutil

from shepherd.agent_client.protocol import RunState
from shepherd.agent_runtime.record import LOG_FILE, RunRecord

log = logging.getLogger("shepherd.agent_runtime.child")
READ_CHUNK = 16 * 1024
# After SIGKILL to the group, the output pipe closes at once unless something outside the group
# holds it; this bounds how long such a stray can keep an execution from finishing.
ORPHAN_PIPE_WAIT_S = 1.0


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
        self._process: asyncio.subprocess.Process | None = None
        self.done = asyncio.Event()

    async def spawn(self) -> None:
        """Start the process (or record why it could not start)."""
        self._dir.mkdir(parents=True, exist_ok=True)
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self._command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env=self._env, start_new_session=True,
            )
        except OSError as exc:
            self.record.started_at_ms = now_ms()
            self.record.finish(now_ms(), None, "spawn_failed", f"{self._command[0]}: {exc}")
            self.done.set()
            return
        self.record.pid = self._process.pid
        with contextlib.suppress(psutil.Error):
            self.record.pid_create_time = psutil.Process(self._process.pid).create_time()
        self.record.started_at_ms = now_ms()
        self.record.state = RunState.RUNNING

    async def run(self) -> None:
        """Feed, collect and wait; finish the record whatever happens."""
        process = self._process
        if process is None:
            return
        pump = asyncio.create_task(self._pump_output(process))
        try:
            try:
                await asyncio.wait_for(self._feed_and_wait(process), self.record.timeout_s)
            except TimeoutError:
                self._flag("timed_out", f"timed out after {self.record.timeout_s} s")
                await self._kill_group(process)
            await self._collect_leftovers(process, pump)
            self.record.finish(now_ms(), process.returncode)
        finally:
            if process.returncode is None:  # cancelled (shutdown): never leave it running
                await self._kill_group(process)
                self.record.finish(now_ms(), process.returncode, "terminated", "runtime shut down")
            if not pump.done():
                pump.cancel()
                # wait() rather than await: the pump's own CancelledError is not ours to raise.
                await asyncio.wait([pump])
            self.done.set()
        await self._on_change(self.record)

    async def _feed_and_wait(self, process: asyncio.subprocess.Process) -> None:
        await self._feed(process)
        await process.wait()

    async def _collect_leftovers(
        self, process: asyncio.subprocess.Process, pump: asyncio.Task[None]
    ) -> None:
        """The child has exited; anything it left in its group goes too (invariant R-02)."""
        with contextlib.suppress(TimeoutError):  # else a grandchild still holds the pipe
            await asyncio.wait_for(asyncio.shield(pump), 0.5)
        signal_group(process.pid, signal.SIGTERM)
        if not pump.done():
            try:
                await asyncio.wait_for(asyncio.shield(pump), self._kill_grace_s)
            except TimeoutError:
                signal_group(process.pid, signal.SIGKILL)
        if not pump.done():
            # Only a process that left the group (setsid) can still hold the pipe: stop reading
            # rather than let it keep this execution running forever.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(pump), ORPHAN_PIPE_WAIT_S)
            if not pump.done():
                log.warning("execution %s: a process outside its group holds its output; "
                            "output after this point is dropped", self.record.execution_id)

    async def terminate(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._flag("terminated", "terminated on request")
            await self._kill_group(self._process)

    def _flag(self, error_class: str, error: str) -> None:
        self.record.error_class = self.record.error_class or error_class
        self.record.error = self.record.error or error

    async def _feed(self, process: asyncio.subprocess.Process) -> None:
        """Write the input, then close stdin so the child sees end-of-file."""
        stdin = process.stdin
        assert stdin is not None
        try:
            if self._input:
                if stdin.transport.is_closing():
                    # The child closed its end before a byte was written. asyncio would drop the
                    # write silently and may let drain() return before it reports the loss.
                    raise BrokenPipeError("stdin closed by the child")
                stdin.write(self._input)
                await stdin.drain()
            stdin.close()
            await stdin.wait_closed()
        except (BrokenPipeError, ConnectionResetError):
            stdin.close()
            log.info("execution %s: child exited before reading its input",
                     self.record.execution_id)
            self._flag("child_exited_early", "the child exited before reading its input")

    async def _pump_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        with open(self._dir / LOG_FILE, "ab") as log_file:  # noqa: ASYNC230 - local file
            while chunk := await process.stdout.read(READ_CHUNK):
                log_file.write(chunk)
                tail = self.record.tail
                tail.extend(chunk)
                if len(tail) > self._tail_bytes:
                    del tail[: len(tail) - self._tail_bytes]

    async def _kill_group(self, process: asyncio.subprocess.Process) -> None:
        signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.wait()), self._kill_grace_s)
        # Grandchildren may outlive the child: the group gets SIGKILL either way.
        signal_group(process.pid, signal.SIGKILL)
        await process.wait()


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
