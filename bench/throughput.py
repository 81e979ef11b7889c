"""Throughput benchmark: a backlog of trivial executions drained by local agent runtimes.

One run measures, on each backend asked for (SQLite always; PostgreSQL with ``--database-url`` or
``SHEPHERD_TEST_POSTGRES_URL``), with the control plane's default tick intervals:

1. the raw spawn floor: the same N children (``true``) started and reaped by a bare loop, one
   process per core; every rate below is also printed as a ratio of it;
2. drain rate: N executions submitted into the backlog through the submit service the API's
   ``POST /executions`` calls (and its dispatcher nudge), then drained by (a) 1 agent x 2 slots
   and (b) 4 agents x 16 slots; executions/s from the first claim to the last terminal commit,
   this process's CPU per execution, and the runtimes' own (their children's left out);
3. end-to-end latency on an idle fleet: one execution at a time, ``created_at_ms`` (submit) to
   ``completed_at_ms`` (terminal committed), p50/p95;
4. dispatch latency at a paced rate (default 50/s): ``queued_at_ms`` to ``started_at_ms``, p95.

The load average is printed with the figures: this machine is shared. Appends to
docs/benchmarks.md.

    python bench/throughput.py [--n 2000] [--rate 50] [--seconds 5] [--latency-runs 30]
                               [--database-url URL] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import platform
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import psutil
from benchmarks_file import append_figures
from measure import cpu_s, percentile
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from shepherd.app.plane import ControlPlane, agent_token
from shepherd.app.runtimes import LocalRuntimes
from shepherd.core.models import Trigger
from shepherd.core.status import ExecutionStatus
from shepherd.manifest.schema import AgentSpec
from shepherd.services.executions import submit
from shepherd.settings import load_settings

SHAPES = ((1, 2), (4, 16))  # (agents, slots per agent)
ACTIVE = {"queued", "running", "finalizing"}
# How often a drain checks whether it is over: its CPU counts as the control plane's.
DRAIN_POLL_S = 0.25


def _spawn_many(n: int) -> None:
    for _ in range(n):
        pid = os.posix_spawnp("true", ["true"], os.environ)
        os.waitpid(pid, 0)


def spawn_floor(n: int) -> float:
    """Children/s for ``n`` ``true`` children, one bare spawn-and-reap loop per core."""
    cores = os.cpu_count() or 1
    procs = [multiprocessing.Process(target=_spawn_many, args=(n // cores,)) for _ in range(cores)]
    t0 = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    return (n // cores) * cores / (time.perf_counter() - t0)


@asynccontextmanager
async def fresh_postgres(url: str) -> AsyncIterator[str]:
    """A private database on the server at ``url``, dropped afterwards."""
    name = f"shepherd_bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        await admin.dispose()


class Fleet:
    """A control plane and its local runtimes in a temporary data dir."""

    def __init__(self, plane: ControlPlane, runtimes: LocalRuntimes, agents: list[str]) -> None:
        self.plane, self.runtimes, self.agents = plane, runtimes, agents

    async def submit(self, i: int) -> str:
        row = await submit(self.plane.db, agent=self.agents[i % len(self.agents)], input="",
                           trigger=Trigger.API, created_by="bench")
        self.plane.dispatch_wakeup.poke()  # what the API's submit route does
        return row.id

    def runtime_processes(self) -> list[psutil.Process]:
        """The agent runtimes this process started (the embedded Redis left out)."""
        return [p for p in psutil.Process().children()
                if "redis" not in p.name()]

    async def wait_all_terminal(self, limit_s: float, poll_s: float = 0.05) -> None:
        """One GROUP BY per ``poll_s``: the bench runs in the control plane's process, and its
        own polling must not be what that process is measured spending on (a drain's rate is
        taken from the rows' instants, not from when this notices the end)."""
        deadline, pending = time.monotonic() + limit_s, -1
        while time.monotonic() < deadline:
            counts = await self.plane.db.executions.count_by_agent_and_status()
            pending = sum(n for (_, status), n in counts.items() if status in ACTIVE)
            if pending == 0:
                return
            await asyncio.sleep(poll_s)
        raise SystemExit(f"{pending} executions did not finish within {limit_s} s")


@asynccontextmanager
async def fleet(server_url: str | None, agents: int, slots: int) -> AsyncIterator[Fleet]:
    """A fresh fleet; on PostgreSQL (``server_url``) in a database of its own."""
    async with contextlib.AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(fresh_postgres(server_url)) \
            if server_url else None
        async with _fleet(database_url, agents, slots) as built:
            yield built


@asynccontextmanager
async def _fleet(database_url: str | None, agents: int, slots: int) -> AsyncIterator[Fleet]:
    with tempfile.TemporaryDirectory(prefix="shepherd-bench-") as tmp:
        settings = load_settings(data_dir=Path(tmp), database_url=database_url,
                                 monitor_poll_wait_s=5, log_level="WARNING")
        plane = await ControlPlane.open(settings)
        runtimes = LocalRuntimes(settings.data_dir, agent_token(settings))
        names = [f"bench-{i}" for i in range(agents)]
        try:
            for name in names:
                runtime = await runtimes.start(AgentSpec(name=name, command=("true",)))
                await plane.db.agents.create(name=name, url=runtime.url, command=None,
                                             max_parallel_tasks=slots, max_backlog_depth=1_000_000)
            yield Fleet(plane, runtimes, names)
        finally:
            await plane.close()
            await runtimes.stop()


async def drain(database_url: str | None, agents: int, slots: int, n: int) -> dict[str, float]:
    """Fill the backlog with the plane stopped, then start it and time the drain."""
    async with fleet(database_url, agents, slots) as f:
        ids = [await f.submit(i) for i in range(n)]
        runtimes = f.runtime_processes()
        cpu0, runtime_cpu0, t0 = cpu_s(), _cpu_of(runtimes), time.perf_counter()
        f.plane.start()
        await f.wait_all_terminal(limit_s=1800, poll_s=DRAIN_POLL_S)
        cpu, runtime_cpu = cpu_s() - cpu0, _cpu_of(runtimes) - runtime_cpu0
        rows = [await f.plane.db.executions.get(eid) for eid in ids]
    ok = sum(1 for row in rows if row.status is ExecutionStatus.SUCCESS)
    first = min(row.dispatched_at_ms or row.completed_at_ms or 0 for row in rows)
    last = max(row.completed_at_ms or 0 for row in rows)
    seconds = (last - first) / 1000 if last > first else time.perf_counter() - t0
    return {"n": n, "ok": ok, "per_s": n / seconds, "cpu_ms": 1000 * cpu / n,
            "runtime_cpu_ms": 1000 * runtime_cpu / n}


def _cpu_of(processes: list[psutil.Process]) -> float:
    """User + system seconds of ``processes`` (their own, not their children's)."""
    return sum(sum(p.cpu_times()[:2]) for p in processes)


async def latency(database_url: str | None, runs: int, rate: float,
                  seconds: float) -> dict[str, float]:
    """Idle-fleet end-to-end latency, then paced dispatch latency, on 1 agent x 16 slots."""
    async with fleet(database_url, 1, 16) as f:
        f.plane.start()
        await asyncio.sleep(1.0)  # let every loop take its lease
        e2e: list[float] = []
        for i in range(runs):
            eid = await f.submit(i)
            await f.wait_all_terminal(limit_s=60)
            row = await f.plane.db.executions.get(eid)
            if row.completed_at_ms is not None:
                e2e.append(float(row.completed_at_ms - row.created_at_ms))
        ids, start = [], time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            ids.append(await f.submit(i))
        await f.wait_all_terminal(limit_s=600)
        dispatch = []
        for eid in ids:
            row = await f.plane.db.executions.get(eid)
            if row.started_at_ms and row.queued_at_ms:
                dispatch.append(float(row.started_at_ms - row.queued_at_ms))
    return {"e2e_p50": percentile(e2e, 0.5), "e2e_p95": percentile(e2e, 0.95),
            "dispatch_p95": percentile(dispatch, 0.95), "rate": rate}


async def backend(name: str, url: str | None, args: argparse.Namespace,
                  floor: float) -> list[str]:
    lines = []
    for agents, slots in SHAPES:
        fig = await drain(url, agents, slots, args.n)
        target = "≥ 150/s" if agents == 1 else "≥ 500/s"
        lines.append(
            f"| {name} | drain {agents}x{slots} | {fig['per_s']:.1f}/s "
            f"({fig['per_s'] / floor:.3f} of floor); CPU {fig['cpu_ms']:.2f} ms/execution "
            f"(runtimes {fig['runtime_cpu_ms']:.2f} ms); "
            f"{int(fig['ok'])}/{int(fig['n'])} succeeded | {target} |")
        print(lines[-1], flush=True)
    lat = await latency(url, args.latency_runs, args.rate, args.seconds)
    lines.append(f"| {name} | e2e latency, idle fleet | p50 {lat['e2e_p50']:.0f} ms, "
                 f"p95 {lat['e2e_p95']:.0f} ms | p50 ≤ 15 ms, p95 ≤ 40 ms |")
    lines.append(f"| {name} | dispatch latency at {lat['rate']:.0f}/s | p95 "
                 f"{lat['dispatch_p95']:.0f} ms | ≤ 25 ms |")
    print("\n".join(lines[-2:]), flush=True)
    return lines


async def main(args: argparse.Namespace) -> str:
    load = os.getloadavg()
    floor = spawn_floor(args.n)
    print(f"spawn floor {floor:.0f}/s", flush=True)
    rows = await backend("SQLite", None, args, floor)
    pg_url = args.database_url or os.environ.get("SHEPHERD_TEST_POSTGRES_URL")
    if pg_url and not args.no_postgres:
        rows += await backend("PostgreSQL", pg_url, args, floor)
    load_after = os.getloadavg()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"\n### throughput — {when} — {platform.machine()}, {platform.python_version()}\n\n"
        f"`python bench/throughput.py --n {args.n}` — child `true`, default tick intervals, "
        f"embedded Redis. Raw spawn floor {floor:.0f} children/s ({os.cpu_count()} processes). "
        f"Load average {load[0]:.2f} before, {load_after[0]:.2f} after.\n\n"
        "| backend | figure | value | target |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--latency-runs", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--no-postgres", action="store_true")
    append_figures(asyncio.run(main(parser.parse_args())))
