"""Fleet page benchmark: render time of ``/`` with 100 agents and 100,000 executions stored.

Seeds a fresh store (SQLite in a temporary data dir by default, or ``--database-url``) with the
agents, a week of executions (an hour's worth among them, so the chart and totals have work) and
some in flight with their slots held, then asks the dashboard for its pages in process (ASGI, no
network) with a signed-in session: every store query, the Redis round trip and the template are
in the figure. Prints p50/p95/max and appends them to docs/benchmarks.md.

    python bench/dashboard_fleet.py [--agents 100] [--executions 100000] [--requests 50]
                                    [--database-url postgresql+asyncpg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from benchmarks_file import append_figures
from dashboard_setup import (
    Bench,
    bench_dashboard,
    bulk_insert,
    create_agents,
    percentile,
    seed_rows,
)

WEEK_MS = 7 * 86_400_000
HOUR_MS = 3_600_000
TARGET_MS = 200.0
PAGES = ("/", "/?fragment=live", "/?fragment=agent&agent=agent-000", "/executions",
         "/schedules")


async def seed(bench: Bench, agents: int, count: int) -> None:
    names = [f"agent-{i:03d}" for i in range(agents)]
    await create_agents(bench.db, names)
    now = int(time.time() * 1000)
    in_flight = 2 * agents
    recent = count // 30  # about 3,300 of 100,000 finished within the hour
    rows = seed_rows(names, count - recent, now, WEEK_MS, in_flight)
    rows += seed_rows(names, recent, now, HOUR_MS, 0, seed=11)
    await bulk_insert(bench.db, rows)
    reading = await bench.redis.epoch.read()  # what slot recovery does on a fresh Redis
    await bench.redis.epoch.seal(reading.run_id)
    for row in rows[:in_flight]:
        if row["status"] == "running":
            await bench.redis.slots.acquire(row["agent"], row["id"], max_parallel=4,
                                            timeout_s=900, now_ms=now, holder="bench",
                                            epoch=reading.run_id)
    for name in names:
        await bench.redis.client.hset(bench.redis.keys.agent_cursor(name),
                                      mapping={"seen_at_ms": now, "booted_at_ms": now - 60_000})


async def timings_ms(bench: Bench, path: str, requests: int) -> list[float]:
    transport = httpx.ASGITransport(app=bench.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.test",
                                 cookies=bench.cookie) as client:
        warm = await client.get(path)
        assert warm.status_code == 200, (path, warm.status_code, warm.text[:300])
        out = []
        for _ in range(requests):
            started = time.perf_counter()
            response = await client.get(path)
            out.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
    return out


async def main(args: argparse.Namespace) -> tuple[str, dict[str, list[float]]]:
    with tempfile.TemporaryDirectory(prefix="shepherd-bench-") as tmp:
        async with bench_dashboard(Path(tmp), args.database_url) as bench:
            started = time.perf_counter()
            await seed(bench, args.agents, args.executions)
            print(f"seeded {args.executions} executions in {time.perf_counter() - started:.1f} s")
            store = "SQLite" if bench.db.engine.dialect.name == "sqlite" else "PostgreSQL"
            before = os.getloadavg()[0]  # a shared machine: the figures move with its load
            figures = {path: await timings_ms(bench, path, args.requests) for path in PAGES}
            after = os.getloadavg()[0]
            return f"{store}; load average {before:.2f} before, {after:.2f} after", figures


def record(args: argparse.Namespace, store: str, figures: dict[str, list[float]]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    flag = " --database-url postgresql+asyncpg://…" if args.database_url else ""
    lines = [
        f"\n### dashboard fleet page — {when} — {platform.machine()}, "
        f"{platform.python_version()}\n",
        f"`python bench/dashboard_fleet.py{flag}` — {args.agents} agents, {args.executions:,} "
        f"executions ({store}; embedded Redis), {args.requests} requests per page after one "
        "warm-up, in process (ASGI: every query, the Redis round trip and the template; no "
        "network).\n",
        "| page | p50 | p95 | max | target |", "|---|---|---|---|---|",
    ]
    for path, values in figures.items():
        target = f"≤ {TARGET_MS:.0f} ms" if path == "/" else "—"
        lines.append(f"| `{path}` | {percentile(values, 0.5):.1f} ms | "
                     f"{percentile(values, 0.95):.1f} ms | {max(values):.1f} ms | {target} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    arguments = parser.parse_args()
    append_figures(record(arguments, *asyncio.run(main(arguments))))
