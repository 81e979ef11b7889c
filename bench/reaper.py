"""Reaper benchmark: what one pass costs on a busy fleet, and how fast it ends lost finalizations.

On SQLite in a temporary directory (or the database of ``--database-url``) and a private
redis-server, with ``--running`` running rows over 20 agents (each watched: its monitor lease is
held) and ``--finalizing`` finalizing rows on one more agent:

1. quiet: the finalizing rows within their grace; nothing to do. Pass duration p50 / p95.
2. defer: the grace passed, every finalizing row's lease held by a live finalizer; every row
   is deferred (counted, nothing written). Pass duration p50 / p95.
3. take over: the leases gone and the agent declared lost; one pass ends every row ``failed``
   (``result_lost``), each under its finalize lease with one CAS: rows/s.

Prints the figures and appends them to docs/benchmarks.md.

    python bench/reaper.py [--running 2000] [--finalizing 200] [--database-url URL]
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

from sqlalchemy import update

from shepherd.agent_client.pool import AgentClientPool
from shepherd.controllers.base import Wakeup
from shepherd.controllers.directory import PooledDirectory
from shepherd.controllers.finalizer import Finalizer
from shepherd.controllers.monitor import Monitor
from shepherd.controllers.reaper import Reaper
from shepherd.core.clock import ManualClock
from shepherd.core.ids import AgentName
from shepherd.core.models import Trigger
from shepherd.core.reaper import DEFAULT_FINALIZE_GRACE_S
from shepherd.core.status import ExecutionStatus
from shepherd.stores.redis.connection import RedisHandle, connect_redis
from shepherd.stores.sql.database import Database, open_database
from shepherd.stores.sql.tables import executions

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.benchmarks_file import append_figures

AGENTS = 20
PASSES = 20
OWNER = "bench-finalizer"


async def rows(db: Database, agent: str, n: int, status: ExecutionStatus, now_ms: int) -> list[str]:
    ids = [(await db.executions.submit(agent=AgentName(agent), input="x", trigger=Trigger.API,
                                       created_by="bench")).id for _ in range(n)]
    async with db.engine.begin() as conn:
        await conn.execute(update(executions).where(executions.c.id.in_(ids)).values(
            status=status.value, dispatched_at_ms=now_ms, finished_at_ms=now_ms))
    return ids


async def timed_passes(reaper: Reaper) -> list[float]:
    durations = []
    for _ in range(PASSES):
        started = time.perf_counter()
        await reaper.run_once()
        durations.append((time.perf_counter() - started) * 1000)
    return durations


async def scenario(
    db: Database, redis: RedisHandle, running: int, finalizing: int
) -> dict[str, float]:
    clock = ManualClock(time.time_ns() // 1_000_000)
    now = clock.now_ms()
    for index in range(AGENTS):
        name = f"a{index}"
        await db.agents.create(name=AgentName(name), url="http://127.0.0.1:9", command=None,
                               max_backlog_depth=100_000)
        await redis.leases.acquire(redis.keys.monitor_lease(name), OWNER, 3_600_000)
        await rows(db, name, running // AGENTS, ExecutionStatus.RUNNING, now)
    await db.agents.create(name=AgentName("ending"), url="http://127.0.0.1:9", command=None,
                           max_backlog_depth=100_000)
    ending = await rows(db, "ending", finalizing, ExecutionStatus.FINALIZING, now)
    pool = AgentClientPool()
    directory = PooledDirectory(pool, "bench-agent-token-0123456789abcdef")
    finalizer = Finalizer(db, redis, directory, clock, owner="bench")
    monitor = Monitor(db, redis, directory, clock, owner="bench", finalizer_wakeup=Wakeup())
    reaper = Reaper(db, redis, directory, clock, finisher=finalizer, watcher=monitor,
                    owner="bench")
    try:
        quiet = await timed_passes(reaper)
        clock.advance(DEFAULT_FINALIZE_GRACE_S)
        for eid in ending:
            await redis.leases.acquire(redis.keys.finalize_lease(eid), OWNER, 3_600_000)
        defer = await timed_passes(reaper)
        for eid in ending:
            await redis.leases.release(redis.keys.finalize_lease(eid), OWNER)
        await redis.health.fence("ending", clock.now_ms())
        started = time.perf_counter()
        report = await reaper.run_once()
        took_s = time.perf_counter() - started
        assert len(report.result_lost) == finalizing, report
    finally:
        await monitor.stop()
        await pool.aclose()
    return {"quiet_p50": statistics.median(quiet), "quiet_p95": p95(quiet),
            "defer_p50": statistics.median(defer), "defer_p95": p95(defer),
            "takeover_rows_s": finalizing / took_s, "takeover_s": took_s}


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(len(values) * 0.95) - 1)]


async def main(running: int, finalizing: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="shepherd-bench-reaper-") as tmp:
        url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        db = await open_database(url, ManualClock())
        redis = await connect_redis(None, Path(tmp), "bench:")
        try:
            figures = await scenario(db, redis, running, finalizing)
        finally:
            await redis.close()
            await db.close()
    backend = "PostgreSQL" if database_url else "SQLite"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    append_figures(
        f"### reaper — {stamp} — {platform.machine()}, {platform.python_version()} — "
        f"{backend}\n\n"
        f"`python bench/reaper.py --running {running} --finalizing {finalizing}"
        f"{' --database-url ...' if database_url else ''}`: one pass over {running} running rows "
        f"({AGENTS} agents, all watched) and {finalizing} finalizing rows, {PASSES} passes "
        "each.\n\n"
        "| pass | p50 ms | p95 ms |\n|---|---|---|\n"
        f"| quiet (within the grace) | {figures['quiet_p50']:.1f} | {figures['quiet_p95']:.1f} |\n"
        f"| defer (grace passed, every lease live) | {figures['defer_p50']:.1f} | "
        f"{figures['defer_p95']:.1f} |\n\n"
        f"Take-over: one pass ended {finalizing} finalizations of a lost agent (lease, CAS, "
        f"event each) in {figures['takeover_s']:.2f} s, {figures['takeover_rows_s']:.0f} rows/s."
        "\n\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--running", type=int, default=2000)
    parser.add_argument("--finalizing", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.running, args.finalizing, args.database_url))
