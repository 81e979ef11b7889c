"""Canary benchmark: what one full cycle (collect + all 27 checks) costs as the install grows.

Builds synthetic state in real stores (SQLite in a temporary directory, or ``--database-url``,
and a private redis-server): per size, agents with 100 rows each on average, of which 2 %
running (each with its slot member and hash in Redis), 1 % queued, the rest finished (5 % of
those within the canary's recent window), one terminal event per finished row. Agents have no
runtime URL, so the figure is the stores' part (a runtime adds one parallel HTTP round trip).
Times ``--cycles`` cycles per size and prints p50 / p95; appends them to docs/benchmarks.md.
Targets: <= 100 ms at 50 agents / 5,000 rows, <= 1 s at 1,000 agents / 100,000 rows.

    python bench/canary.py [--sizes 50:5000,200:20000,1000:100000] [--cycles 10]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert

from shepherd.canary.collect import CollectConfig, Collector
from shepherd.canary.service import CanaryService
from shepherd.canary.snapshot import CanarySettings
from shepherd.core.clock import ManualClock
from shepherd.core.status import ExecutionStatus as S
from shepherd.core.timeouts import slot_ttl_s
from shepherd.stores.redis.canary_probes import CanaryProbes
from shepherd.stores.redis.connection import RedisHandle, connect_redis
from shepherd.stores.sql.database import Database, open_database
from shepherd.stores.sql.tables import agents, canary_violations, execution_events, executions

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.benchmarks_file import append_figures

CONTROLLERS = {"scheduler": 1.0, "dispatcher": 0.5, "monitor": 2.0, "finalizer": 1.0,
               "maintenance": 5.0, "outbox": 1.0, "watchdog": 10.0, "reaper": 30.0}


class NoRuntimes:
    def client_for(self, agent: object) -> None:
        return None


def _row(i: int, agent: str, now: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    status = S.RUNNING if i % 50 == 0 else S.QUEUED if i % 100 == 1 else S.SUCCESS
    recent = i % 20 == 2
    done_at = now - (60_000 if recent else 3_600_000)
    row = {"id": f"{i:032x}", "agent": agent, "trigger": "api", "input": "x",
           "status": status.value, "attempt": 1, "max_attempts": 1, "timeout_s": 600,
           "queued_at_ms": now - 5_000, "created_at_ms": now - 5_000,
           "dispatched_at_ms": now - 4_000 if status is not S.QUEUED else None,
           "started_at_ms": now - 3_900 if status is not S.QUEUED else None,
           "pid": 1 if status is not S.QUEUED else None,
           "runtime_boot_id": "b" if status is not S.QUEUED else None}
    if status is S.SUCCESS:
        row.update(started_at_ms=done_at - 1_000, finished_at_ms=done_at,
                   completed_at_ms=done_at, exit_code=0)
        return row, {"execution_id": row["id"], "from_status": "finalizing",
                     "to_status": "success", "cause": "finalized", "actor": "bench",
                     "at_ms": done_at}
    return row, None


async def populate(db: Database, redis: RedisHandle, n_agents: int, n_rows: int, now: int) -> None:
    names = [f"agent-{a:04d}" for a in range(n_agents)]
    async with db.engine.begin() as conn:
        await conn.execute(insert(agents), [
            {"name": n, "url": None, "command": ["true"], "max_parallel_tasks": 8,
             "max_backlog_depth": 1000, "enabled": True, "success_exit_codes": [0],
             "created_at_ms": now - 86_400_000} for n in names])
        rows, events = [], []
        for i in range(n_rows):
            row, event = _row(i, names[i % n_agents], now)
            rows.append(row)
            if event:
                events.append(event)
        for start in range(0, len(rows), 5_000):
            await conn.execute(insert(executions), rows[start:start + 5_000])
        for start in range(0, len(events), 5_000):
            await conn.execute(insert(execution_events), events[start:start + 5_000])
    probes = CanaryProbes(redis.client, redis.keys)
    for row in rows:
        if row["status"] == S.RUNNING.value:
            await probes.plant_slot(row["agent"], row["id"], now - 4_000, 600, slot_ttl_s(600))


async def measure(n_agents: int, n_rows: int, cycles: int, database_url: str | None) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="shepherd-bench-canary-") as tmp:
        clock = ManualClock(time.time_ns() // 1_000_000)
        url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        db = await open_database(url, clock)
        redis = await connect_redis(None, Path(tmp), "bench:")
        try:
            await wipe(db)
            await populate(db, redis, n_agents, n_rows, clock.now_ms())
            collector = Collector(db, redis, NoRuntimes(), clock,
                                  CollectConfig(CanarySettings(), CONTROLLERS))
            service = CanaryService(db, collector, None, clock)
            durations = []
            for _ in range(cycles):
                started = time.perf_counter()
                result = await service.run_cycle()
                durations.append((time.perf_counter() - started) * 1000)
                assert not result.failed, result.failed
            return durations
        finally:
            await wipe(db)
            await redis.close()
            await db.close()


async def wipe(db: Database) -> None:
    """An external database is shared between sizes: start each from empty tables."""
    async with db.engine.begin() as conn:
        for table in (canary_violations, execution_events, executions, agents):
            await conn.execute(delete(table))


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(len(values) * 0.95) - 1)]


async def main(sizes: list[tuple[int, int]], cycles: int, database_url: str | None) -> None:
    lines = []
    for n_agents, n_rows in sizes:
        d = await measure(n_agents, n_rows, cycles, database_url)
        lines.append(f"| {n_agents} | {n_rows:,} | {statistics.median(d):.1f} | {p95(d):.1f} |")
        print(lines[-1], flush=True)
    backend = "PostgreSQL" if database_url else "SQLite"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    size_arg = ",".join(f"{a}:{r}" for a, r in sizes)
    append_figures(
        f"\n### canary — {stamp} — {platform.machine()}, {platform.python_version()} — "
        f"{backend}\n\n`python bench/canary.py --sizes {size_arg} --cycles {cycles}`: one full "
        "cycle (collect + 27 checks + persisting, no alert sink) over synthetic state.\n\n"
        "| agents | rows | p50 ms | p95 ms |\n|---|---|---|---|\n" + "\n".join(lines) + "\n"
    )


def _sizes(text: str) -> list[tuple[int, int]]:
    return [(int(a), int(r)) for a, r in (part.split(":") for part in text.split(","))]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_sizes, default=_sizes("50:5000,200:20000,1000:100000"))
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.cycles, args.database_url))
