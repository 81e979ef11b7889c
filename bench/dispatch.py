"""Dispatch benchmark: trivial executions through 4 local agent runtimes, end to end.

Two runs on embedded stores (SQLite + a private redis-server) in a temporary data dir:

1. throughput: N executions submitted at once; executions/s from first submit to last terminal.
2. paced: executions submitted at a fixed rate (default 50/s); dispatch latency p50/p95, measured
   from ``queued_at_ms`` to ``started_at_ms`` (the runtime accepted and spawned the child).

Control-plane CPU per execution is this process's CPU time (the runtimes and children are other
processes) divided by the executions. Prints the figures and appends them to docs/benchmarks.md.

    python bench/dispatch.py [--executions 400] [--rate 50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks_file import append_figures
from measure import cpu_s, percentile

from shepherd.app.plane import ControlPlane, agent_token
from shepherd.app.runtimes import LocalRuntimes
from shepherd.core.models import Trigger
from shepherd.core.status import ExecutionStatus
from shepherd.manifest.schema import AgentSpec
from shepherd.services.executions import submit
from shepherd.settings import load_settings

AGENTS = 4
SLOTS_PER_AGENT = 16
ACTIVE = {"queued", "running", "finalizing"}


async def wait_all_terminal(plane: ControlPlane, limit_s: float) -> None:
    """One GROUP BY query per 0.2 s: the bench must not be what the control plane spends on."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        counts = await plane.db.executions.count_by_agent_and_status()
        pending = sum(n for (_, status), n in counts.items() if status in ACTIVE)
        if pending == 0:
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"{pending} executions did not finish within {limit_s} s")


async def submit_one(plane: ControlPlane, i: int) -> str:
    row = await submit(plane.db, agent=f"bench-{i % AGENTS}", input="", trigger=Trigger.API,
                       created_by="bench")
    plane.dispatch_wakeup.poke()
    return row.id


async def latencies_ms(plane: ControlPlane, ids: list[str]) -> list[float]:
    out = []
    for eid in ids:
        row = await plane.db.executions.get(eid)
        if row.started_at_ms and row.queued_at_ms:
            out.append(float(row.started_at_ms - row.queued_at_ms))
    return out


async def throughput(plane: ControlPlane, n: int) -> dict[str, float]:
    cpu0, t0 = cpu_s(), time.perf_counter()
    ids = [await submit_one(plane, i) for i in range(n)]
    await wait_all_terminal(plane, limit_s=600)
    elapsed, cpu = time.perf_counter() - t0, cpu_s() - cpu0
    rows = [await plane.db.executions.get(eid) for eid in ids]
    ok = sum(1 for row in rows if row.status is ExecutionStatus.SUCCESS)
    return {"executions": n, "succeeded": ok, "seconds": elapsed, "per_s": n / elapsed,
            "cpu_ms_per_execution": 1000 * cpu / n}


async def paced(plane: ControlPlane, rate: float, seconds: float) -> dict[str, float]:
    ids: list[str] = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        ids.append(await submit_one(plane, i))
    await wait_all_terminal(plane, limit_s=600)
    lat = await latencies_ms(plane, ids)
    return {"rate": rate, "executions": len(ids), "p50_ms": percentile(lat, 0.5),
            "p95_ms": percentile(lat, 0.95)}


async def main(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="shepherd-bench-") as tmp:
        settings = load_settings(
            data_dir=Path(tmp), dispatcher_interval_s=0.05, finalizer_interval_s=0.05,
            monitor_interval_s=0.5, monitor_poll_wait_s=5, log_level="WARNING",
        )
        plane = await ControlPlane.open(settings)
        runtimes = LocalRuntimes(settings.data_dir, agent_token(settings))
        try:
            for i in range(AGENTS):
                spec = AgentSpec(name=f"bench-{i}", command=("true",))
                runtime = await runtimes.start(spec)
                await plane.db.agents.create(name=spec.name, url=runtime.url, command=None,
                                             max_parallel_tasks=SLOTS_PER_AGENT,
                                             max_backlog_depth=100_000)
            plane.start()
            first = await throughput(plane, args.executions)
            second = await paced(plane, args.rate, args.seconds)
        finally:
            await plane.close()
            await runtimes.stop()
    return first, second


def record(first: dict[str, float], second: dict[str, float]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"\n### dispatch — {when} — {platform.machine()}, {platform.python_version()}\n\n"
        f"`python bench/dispatch.py` — {AGENTS} local agents x {SLOTS_PER_AGENT} slots, child "
        f"`true`, SQLite + embedded Redis.\n\n"
        "| figure | value | target |\n|---|---|---|\n"
        f"| throughput ({int(first['executions'])} at once) | {first['per_s']:.1f} executions/s "
        f"| ≥ 200/s |\n"
        f"| control-plane CPU per execution | {first['cpu_ms_per_execution']:.2f} ms | — |\n"
        f"| succeeded | {int(first['succeeded'])}/{int(first['executions'])} | all |\n"
        f"| dispatch latency p50 at {second['rate']:.0f}/s | {second['p50_ms']:.0f} ms | — |\n"
        f"| dispatch latency p95 at {second['rate']:.0f}/s | {second['p95_ms']:.0f} ms "
        f"| ≤ 25 ms |\n"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=400)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    first, second = asyncio.run(main(parser.parse_args()))
    append_figures(record(first, second))
