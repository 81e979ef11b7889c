"""Local agent runtimes for ``shepherd up``: one ``shepherd agent`` process per manifest agent
that has a ``command``.

Each runtime runs as ``python -m shepherd.agent_runtime`` on 127.0.0.1 with a free port, in its
own process group, with the fleet's agent token and none of the control plane's other
``SHEPHERD_*`` settings; the agent's ``env`` goes to a file only its owner can read
(``--env-file``), which the runtime gives to that agent's children only. Its URL is read from the
one line it prints when it is accepting. ``stop()`` sends SIGTERM (the runtime terminates its own
children), waits, and SIGKILLs the group of any straggler, so no process is left behind.
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

from shepherd.agent_runtime.environment import RESERVED_PREFIX, write_env_file
from shepherd.errors import ConfigError
from shepherd.manifest.schema import AgentSpec

log = logging.getLogger("shepherd.app.runtimes")

LISTENING = re.compile(r"listening on (http://\S+)")
# A runtime that has not said where it listens within this long is broken, not slow.
START_TIMEOUT_S = 30.0
# The runtime itself gives its children a grace before SIGKILL; allow for that plus a margin.
STOP_TIMEOUT_S = 15.0
CHILD_ENV_FILE = "child-env.json"


@dataclass
class LocalRuntime:
    name: str
    url: str
    process: asyncio.subprocess.Process
    log_path: Path


class LocalRuntimes:
    def __init__(self, data_dir: Path, token: str) -> None:
        self._data_dir = data_dir
        self._token = token
        self.runtimes: dict[str, LocalRuntime] = {}
        self._drains: set[asyncio.Task[None]] = set()

    async def start(self, spec: AgentSpec) -> LocalRuntime:
        assert spec.command is not None
        agent_dir = self._data_dir / "agents" / spec.name
        agent_dir.mkdir(parents=True, exist_ok=True)
        log_path = agent_dir / "runtime.log"
        env_path = agent_dir / CHILD_ENV_FILE
        write_env_file(env_path, spec.env)
        env = {k: v for k, v in os.environ.items() if not k.startswith(RESERVED_PREFIX)}
        env["SHEPHERD_AGENT_TOKEN"] = self._token
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "shepherd.agent_runtime",
                "--name", spec.name, "--port", "0", "--host", "127.0.0.1",
                "--command", shlex.join(spec.command), "--data-dir", str(agent_dir),
                "--env-file", str(env_path),
                stdout=asyncio.subprocess.PIPE, stderr=log_fd, env=env, start_new_session=True,
            )
        finally:
            os.close(log_fd)
        try:
            url = await asyncio.wait_for(self._read_url(process), START_TIMEOUT_S)
        except (TimeoutError, ConfigError):
            await self._kill(process)
            raise ConfigError(
                f"agent {spec.name}: its runtime did not start; see {log_path}"
            ) from None
        runtime = LocalRuntime(spec.name, url, process, log_path)
        self.runtimes[spec.name] = runtime
        drain = asyncio.create_task(self._drain(process))
        self._drains.add(drain)
        drain.add_done_callback(self._drains.discard)
        log.info("agent %s: runtime pid %d at %s", spec.name, process.pid, url)
        return runtime

    async def _read_url(self, process: asyncio.subprocess.Process) -> str:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            match = LISTENING.search(line.decode(errors="replace"))
            if match:
                return match.group(1)
        raise ConfigError("runtime exited before it listened")

    async def _drain(self, process: asyncio.subprocess.Process) -> None:
        """Keep reading the runtime's stdout so a full pipe never blocks it."""
        assert process.stdout is not None
        while await process.stdout.readline():
            pass

    async def stop(self) -> None:
        runtimes, self.runtimes = list(self.runtimes.values()), {}
        for runtime in runtimes:
            if runtime.process.returncode is None:
                runtime.process.send_signal(signal.SIGTERM)
        for runtime in runtimes:
            try:
                await asyncio.wait_for(runtime.process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                log.warning("agent %s: runtime did not stop; killing it", runtime.name)
                await self._kill(runtime.process)

    async def _kill(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
