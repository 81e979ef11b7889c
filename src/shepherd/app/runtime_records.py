"""What ``shepherd up`` remembers about the runtimes it started, so a later ``up`` on the same data
dir can adopt them after a crash instead of starting new ones over them.

Runtimes outlive a control plane that dies (they run in their own sessions, and their children
with them), so a SIGKILLed ``up`` leaves healthy runs in flight. ``<data_dir>/runtimes.json``
(mode 0600) holds, per agent: the runtime's pid and create time (a process's identity: a pid alone
may have been reused), its URL, its exact command line, and what it runs (the agent's command and
a digest of its environment, never the environment itself, which may hold secrets). The file is
rewritten atomically whenever the set of runtimes changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from shepherd.private_files import write_private

log = logging.getLogger("shepherd.app.runtimes")

RECORDS_FILE = "runtimes.json"
# Two readings of one process's create time agree to the clock tick; a reused pid does not.
CREATE_TIME_TOLERANCE_S = 0.05


@dataclass(frozen=True)
class RuntimeSpec:
    """What a local runtime runs: a change here means the runtime must be restarted."""

    name: str
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, name: str, command: tuple[str, ...], env: Mapping[str, str]) -> RuntimeSpec:
        return cls(name, tuple(command), tuple(sorted(env.items())))

    @property
    def env_digest(self) -> str:
        return hashlib.sha256(json.dumps(self.env).encode()).hexdigest()


@dataclass(frozen=True)
class RuntimeRecord:
    agent: str
    pid: int
    create_time: float
    url: str
    argv: tuple[str, ...]  # the runtime process's own command line
    command: tuple[str, ...]  # the agent's child command
    env_digest: str

    def runs(self, spec: RuntimeSpec) -> bool:
        return self.command == spec.command and self.env_digest == spec.env_digest

    def process(self) -> psutil.Process | None:
        """The live process this record names, or None when it is gone or the pid was reused."""
        try:
            process = psutil.Process(self.pid)
            same = abs(process.create_time() - self.create_time) < CREATE_TIME_TOLERANCE_S
            alive = process.status() != psutil.STATUS_ZOMBIE
            if same and alive and tuple(process.cmdline()) == self.argv:
                return process
        except psutil.Error:
            pass
        return None


def create_time_of(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0


def load_records(data_dir: Path) -> dict[str, RuntimeRecord]:
    """The runtimes a previous ``up`` recorded; an unreadable file counts as none."""
    try:
        raw: list[dict[str, Any]] = json.loads((data_dir / RECORDS_FILE).read_text("utf-8"))
        records = [_record(item) for item in raw]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.warning("ignoring %s: %s", data_dir / RECORDS_FILE, exc)
        return {}
    return {r.agent: r for r in records}


def _record(item: dict[str, Any]) -> RuntimeRecord:
    return RuntimeRecord(
        agent=str(item["agent"]), pid=int(item["pid"]), create_time=float(item["create_time"]),
        url=str(item["url"]), argv=tuple(item["argv"]), command=tuple(item["command"]),
        env_digest=str(item["env_digest"]),
    )


def save_records(data_dir: Path, records: list[RuntimeRecord]) -> None:
    text = json.dumps([asdict(r) for r in sorted(records, key=lambda r: r.agent)], indent=2)
    write_private(data_dir / RECORDS_FILE, text + "\n")
