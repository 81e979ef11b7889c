"""Local agent runtimes for ``shepherd up``: one ``python -m shepherd.agent_runtime`` process per
manifest agent that has a ``command``, started here or adopted from a previous ``up``.

A runtime runs on 127.0.0.1 with a free port, in its own session (so it and its children outlive a
control plane that crashes), with the fleet's agent token and none of the control plane's other
``SHEPHERD_*`` settings; the agent's ``env`` goes to a file only its owner can read
(``--env-file``), which the runtime gives to that agent's children only. Its stdout and stderr go
to ``<data_dir>/agents/<name>/runtime.log``, never to a pipe of this process that would break when
this process dies; its URL is read from the one line it prints there once it accepts.

Adoption: ``adopt(spec)`` takes over a runtime recorded in ``runtimes.json`` only when it is the
same process (pid, create time, command line), runs the same command and environment, and answers
``/health`` as that agent and ``/v1/executions`` with the fleet token; a recorded runtime that
fails any check is stopped, and a new one is started in its place. ``stop_unclaimed()`` stops the
recorded runtimes nobody adopted. ``stop()`` sends SIGTERM (the runtime terminates its own
children), waits, and SIGKILLs the group of a straggler, so no process is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from shepherd.agent_runtime.environment import RESERVED_PREFIX, write_env_file
from shepherd.app.runtime_records import (
    RuntimeRecord,
    RuntimeSpec,
    create_time_of,
    load_records,
    save_records,
)
from shepherd.errors import ConfigError
from shepherd.manifest.schema import AgentSpec

log = logging.getLogger("shepherd.app.runtimes")

LISTENING = re.compile(r"listening on (http://\S+)")
# A runtime that has not said where it listens within this long is broken, not slow.
START_TIMEOUT_S = 30.0
# The runtime itself gives its children a grace before SIGKILL; allow for that plus a margin.
STOP_TIMEOUT_S = 15.0
CHILD_ENV_FILE = "child-env.json"
# An adopted runtime answers on localhost in milliseconds, or it is not healthy.
PROBE_TIMEOUT_S = 3.0
POLL_S = 0.05


@dataclass
class LocalRuntime:
    spec: RuntimeSpec
    url: str
    pid: int
    create_time: float
    argv: tuple[str, ...]
    log_path: Path
    process: asyncio.subprocess.Process | None = None  # None when adopted from a previous up

    def record(self) -> RuntimeRecord:
        return RuntimeRecord(self.spec.name, self.pid, self.create_time, self.url, self.argv,
                             self.spec.command, self.spec.env_digest)


class LocalRuntimes:
    def __init__(self, data_dir: Path, token: str) -> None:
        self._data_dir = data_dir
        self._token = token
        self.runtimes: dict[str, LocalRuntime] = {}
        self._previous = load_records(data_dir)

    def agent_dir(self, name: str) -> Path:
        return self._data_dir / "agents" / name

    def argv(self, spec: RuntimeSpec) -> tuple[str, ...]:
        return (sys.executable, "-m", "shepherd.agent_runtime", "--name", spec.name,
                "--port", "0", "--host", "127.0.0.1", "--command", shlex.join(spec.command),
                "--data-dir", str(self.agent_dir(spec.name)),
                "--env-file", str(self.agent_dir(spec.name) / CHILD_ENV_FILE))

    async def start(self, wanted: RuntimeSpec | AgentSpec) -> LocalRuntime:
        """Start a runtime for ``wanted`` (a manifest entry is taken as its command and env)."""
        spec = wanted if isinstance(wanted, RuntimeSpec) else _from_manifest(wanted)
        agent_dir = self.agent_dir(spec.name)
        agent_dir.mkdir(parents=True, exist_ok=True)
        log_path = agent_dir / "runtime.log"
        write_env_file(agent_dir / CHILD_ENV_FILE, dict(spec.env))
        env = {k: v for k, v in os.environ.items() if not k.startswith(RESERVED_PREFIX)}
        env["SHEPHERD_AGENT_TOKEN"] = self._token
        argv = self.argv(spec)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            offset = os.lseek(log_fd, 0, os.SEEK_END)
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=log_fd, stderr=log_fd, env=env,
                start_new_session=True,
            )
        finally:
            os.close(log_fd)
        try:
            url = await asyncio.wait_for(_read_url(log_path, offset, process), START_TIMEOUT_S)
        except (TimeoutError, ConfigError):
            await _stop(process.pid, process, 0)
            raise ConfigError(
                f"agent {spec.name}: its runtime did not start; see {log_path}"
            ) from None
        except BaseException:  # cancelled mid-start (shutdown): never leave it running unowned
            await asyncio.shield(_stop(process.pid, process, 0))
            raise
        runtime = LocalRuntime(spec, url, process.pid, create_time_of(process.pid), argv,
                               log_path, process)
        self._keep(runtime)
        log.info("agent %s: runtime pid %d at %s", spec.name, process.pid, url)
        return runtime

    async def adopt(self, spec: RuntimeSpec) -> LocalRuntime | None:
        """The runtime a previous ``up`` left for this agent, when it is healthy and the same."""
        record = self._previous.pop(spec.name, None)
        if record is None:
            return None
        process = record.process()
        if process is None:
            return None  # gone, or its pid now belongs to another process: nothing to stop
        why = None
        if not record.runs(spec) or record.argv != self.argv(spec):
            why = "it runs another command or environment"
        elif not await self._answers(spec.name, record.url):
            why = "it does not answer as this agent with the fleet token"
        if why is not None:
            log.info("agent %s: not adopting runtime pid %d: %s", spec.name, record.pid, why)
            await _stop(record.pid, None, record.create_time)
            return None
        runtime = LocalRuntime(spec, record.url, record.pid, record.create_time, record.argv,
                               self.agent_dir(spec.name) / "runtime.log")
        self._keep(runtime)
        log.info("agent %s: adopted runtime pid %d at %s", spec.name, record.pid, record.url)
        return runtime

    async def stop_unclaimed(self) -> list[str]:
        """Stop runtimes a previous ``up`` recorded that no agent adopted; their names."""
        previous, self._previous = self._previous, {}
        stopped = []
        for record in previous.values():
            if record.process() is not None:
                log.info("agent %s: stopping runtime pid %d left by a previous run",
                         record.agent, record.pid)
                await _stop(record.pid, None, record.create_time)
                stopped.append(record.agent)
        return stopped

    async def stop_one(self, name: str) -> None:
        runtime = self.runtimes.pop(name, None)
        self._save()
        if runtime is not None:
            await _stop(runtime.pid, runtime.process, runtime.create_time)

    async def stop(self) -> None:
        runtimes, self.runtimes = list(self.runtimes.values()), {}
        await asyncio.gather(*(_stop(r.pid, r.process, r.create_time) for r in runtimes))
        self._save()

    def _keep(self, runtime: LocalRuntime) -> None:
        self.runtimes[runtime.spec.name] = runtime
        self._save()

    def _save(self) -> None:
        records = [r.record() for r in self.runtimes.values()]
        # Until they are adopted or stopped, a previous up's runtimes stay on record.
        records += [r for name, r in self._previous.items() if name not in self.runtimes]
        save_records(self._data_dir, records)

    async def _answers(self, name: str, url: str) -> bool:
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with httpx.AsyncClient(base_url=url, timeout=PROBE_TIMEOUT_S) as http:
                health = await http.get("/health")
                registry = await http.get("/v1/executions", headers=headers)
        except httpx.HTTPError:
            return False
        return (health.status_code == 200 and health.json().get("name") == name
                and registry.status_code == 200)


def _from_manifest(spec: AgentSpec) -> RuntimeSpec:
    if spec.command is None:
        raise ConfigError(f"agent {spec.name}: has no command to run locally")
    return RuntimeSpec.of(spec.name, spec.command, spec.env)


async def _read_url(log_path: Path, offset: int, process: asyncio.subprocess.Process) -> str:
    """The URL the runtime prints to its log once it accepts, reading after ``offset``."""
    with log_path.open("rb") as handle:
        handle.seek(offset)
        pending = b""
        while True:
            pending += handle.read()
            match = LISTENING.search(pending.decode(errors="replace"))
            if match:
                return match.group(1)
            if process.returncode is not None:
                raise ConfigError("runtime exited before it listened")
            await asyncio.sleep(POLL_S)


async def _stop(pid: int, process: asyncio.subprocess.Process | None, create_time: float) -> None:
    """SIGTERM, wait, then SIGKILL the group: for a child of ours or an adopted runtime."""
    if process is None and create_time and abs(create_time_of(pid) - create_time) > 0.05:
        return  # no longer the runtime we knew
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if await _exited(pid, process, STOP_TIMEOUT_S):
        return
    log.warning("runtime pid %d did not stop; killing its group", pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    await _exited(pid, process, STOP_TIMEOUT_S)


async def _exited(pid: int, process: asyncio.subprocess.Process | None, timeout_s: float) -> bool:
    if process is not None:
        try:
            await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            return False
        return True
    try:  # not our child: it cannot be reaped here, only watched until it is gone
        await asyncio.to_thread(psutil.Process(pid).wait, timeout_s)
    except psutil.TimeoutExpired:
        return False
    except psutil.Error:
        pass
    return True
