"""Where the sentinel learns about local executions, and where it remembers them.

``read_runtime_footprints`` reads the records a local agent runtime keeps under its data dir
(``<data dir>/executions/journal.jsonl``, the runtime's own format, read with its own reader): the
child's pid and create time, when the run started and finished, and the leftovers the runtime
reported. Reading a file needs no token and works while the runtime is down — which is when
strays are born.

``FootprintMemory`` keeps the footprints the sentinel still tracks in one JSON file in its data
dir, written atomically when it changes: a runtime forgets a record as soon as the control plane
acks it, and a sentinel restart must not forget an execution whose leftover it is alerting on (it
would send a false recovery).

Must not: write anything under a runtime's data dir.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from shepherd.agent_client.protocol import RunState
from shepherd.agent_runtime.config import RuntimeConfig
from shepherd.agent_runtime.journal import read_records
from shepherd.agent_runtime.record import RunRecord
from shepherd.core.footprints import Footprint

log = logging.getLogger("shepherd.sentinel.footprints")

MEMORY_FILE = "footprints.json"


def read_runtime_footprints(runtime_dirs: Iterable[Path]) -> list[Footprint]:
    """A footprint for every execution with a spawned child in the runtimes' records."""
    found: list[Footprint] = []
    for runtime_dir in runtime_dirs:
        executions = RuntimeConfig(name=runtime_dir.name, data_dir=runtime_dir).executions_dir
        found.extend(_footprint(runtime_dir.name, r) for r in read_records(executions)
                     if r.pid is not None)
    return found


def _footprint(runtime: str, record: RunRecord) -> Footprint:
    assert record.pid is not None
    create = record.pid_create_time
    return Footprint(
        execution_id=record.execution_id, runtime=runtime, pid=record.pid,
        pid_create_ms=round(create * 1000) if create is not None else None,
        started_at_ms=record.started_at_ms, finished_at_ms=_finished_at(record),
        leftovers=tuple((left.pid, left.name) for left in record.leftovers),
    )


def _finished_at(record: RunRecord) -> int | None:
    if record.state is not RunState.FINISHED:
        return None
    return record.finished_at_ms or record.started_at_ms or 0


class FootprintMemory:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / MEMORY_FILE
        self._written: dict[str, Footprint] | None = None

    def load(self) -> dict[str, Footprint]:
        """What was remembered; an unreadable file is logged and forgotten (never fatal)."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            remembered = {f.execution_id: f for f in (_decode(item) for item in raw)}
        except FileNotFoundError:
            remembered = {}
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("sentinel: %s is unreadable (%s); starting with no footprints",
                        self.path, type(exc).__name__)
            remembered = {}
        self._written = dict(remembered)
        return remembered

    def save(self, footprints: Mapping[str, Footprint]) -> None:
        """Write ``footprints`` (atomically) unless they are what was last written; a failed
        write is logged, never raised."""
        if self._written == dict(footprints):
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps([_encode(f) for f in footprints.values()]),
                           encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            # Kept in memory meanwhile: only a restart before the next good write forgets them.
            log.warning("sentinel: footprints not saved to %s (%s)", self.path, exc.strerror)
            return
        self._written = dict(footprints)


def _encode(footprint: Footprint) -> dict[str, Any]:
    return {
        "execution_id": footprint.execution_id, "runtime": footprint.runtime,
        "pid": footprint.pid, "pid_create_ms": footprint.pid_create_ms,
        "started_at_ms": footprint.started_at_ms, "finished_at_ms": footprint.finished_at_ms,
        "leftovers": [list(left) for left in footprint.leftovers],
    }


def _decode(item: dict[str, Any]) -> Footprint:
    return Footprint(
        execution_id=str(item["execution_id"]), runtime=str(item["runtime"]),
        pid=int(item["pid"]), pid_create_ms=item["pid_create_ms"],
        started_at_ms=item["started_at_ms"], finished_at_ms=item["finished_at_ms"],
        leftovers=tuple((int(pid), str(name)) for pid, name in item["leftovers"]),
    )
