"""Recovery benchmark: how fast lost executions leave ``running`` and free their slots, and that
nothing runs twice or is recovered by mistake.

The control plane runs in this process on embedded stores (SQLite + a private redis-server) with
its default watchdog settings; 4 local runtimes run real children (``sleep``) that log their
start and end to one file.

1. restart: 200 executions in flight over 4 agents (``sleep 30``, max_attempts 2). One runtime is
   SIGKILLed with its children and restarted at once on its port (its state file kept). Measured
   from the restart to each lost execution being out of ``running`` with its slot freed.
2. never returns: another runtime SIGKILLed with its children, never restarted. Measured from the
   kill, against ``agent_lost_after_s`` + 5 s.
3. clean: a fresh fleet kept busy with long children for N minutes (default 10), the watchdog at
   a 1 s interval; every watchdog recovery there is a false one.

Duplicate runs are read from the children's log: an execution started twice, or a retry started
before the attempt it replaces ended. Prints the figures and appends them to docs/benchmarks.md.

    python bench/recovery.py [--clean-minutes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from shepherd.app.plane import ControlPlane, agent_token
from shepherd.app.runtimes import LocalRuntimes
from shepherd.core.models import Trigger
from shepherd.core.status import ExecutionStatus
from shepherd.manifest.schema import AgentSpec
from shepherd.services.executions import submit
from shepherd.settings import Settings, load_settings

AGENTS = 4
PER_AGENT = 50
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
POLL_S = 0.1
RECOVERIES = ("orphaned", "agent_lost", "timed_out")


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def child(log: Path, sleep_s: int) -> tuple[str, ...]:
    script = (
        f'echo "start $SHEPHERD_EXECUTION_ID $(date +%s%N)" >> {log}; '
        f'trap "echo end $SHEPHERD_EXECUTION_ID \\$(date +%s%N) >> {log}; exit 143" TERM; '
        f"cat >/dev/null; sleep {sleep_s} & wait $!; "
        f'echo "end $SHEPHERD_EXECUTION_ID $(date +%s%N)" >> {log}'
    )
    return ("sh", "-c", script)


def read_log(log: Path) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    starts: dict[str, list[int]] = {}
    ends: dict[str, list[int]] = {}
    for line in log.read_text(encoding="utf-8").splitlines() if log.exists() else []:
        kind, eid, ns = line.split()
        (starts if kind == "start" else ends).setdefault(eid, []).append(int(ns))
    return starts, ends


@dataclass
class Fleet:
    plane: ControlPlane
    runtimes: LocalRuntimes
    log: Path
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)

    async def close(self) -> None:
        await self.plane.close()
        for process in self.extra:
            process.terminate()
            await asyncio.to_thread(process.wait, 20)
        await self.runtimes.stop()


async def open_fleet(settings: Settings, sleep_s: int, slots: int) -> Fleet:
    plane = await ControlPlane.open(settings)
    runtimes = LocalRuntimes(settings.data_dir, agent_token(settings))
    log = settings.data_dir / "children.log"
    for i in range(AGENTS):
        spec = AgentSpec(name=f"bench-{i}", command=child(log, sleep_s))
        runtime = await runtimes.start(spec)
        await plane.db.agents.create(name=spec.name, url=runtime.url, command=None,
                                     max_parallel_tasks=slots, max_backlog_depth=100_000,
                                     max_attempts=2)
    plane.start()
    return Fleet(plane, runtimes, log)


async def submit_many(fleet: Fleet, agent: str, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        row = await submit(fleet.plane.db, agent=agent, input="", trigger=Trigger.API,
                           created_by="bench")
        ids.append(row.id)
    fleet.plane.dispatch_wakeup.poke()
    return ids


async def wait_running(fleet: Fleet, ids: list[str], limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        statuses = await fleet.plane.db.executions.statuses(ids)
        starts, _ = read_log(fleet.log)
        if all(s is ExecutionStatus.RUNNING for s in statuses.values()) and set(ids) <= set(
                starts):
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"executions did not all start within {limit_s} s")


def kill_with_children(pid: int) -> tuple[list[str], dict[str, str]]:
    """SIGKILL a runtime, then its children; returns its command line and environment."""
    runtime = psutil.Process(pid)
    info = (runtime.cmdline(), runtime.environ())
    doomed = [runtime, *runtime.children(recursive=True)]
    for proc in doomed:
        proc.kill()
    psutil.wait_procs(doomed, timeout=10)
    return info


def restart(info: tuple[list[str], dict[str, str]], url: str, log: Path) -> subprocess.Popen[bytes]:
    argv = list(info[0])
    argv[argv.index("--port") + 1] = url.rsplit(":", 1)[1]
    with log.open("ab") as stderr:
        return subprocess.Popen(argv, env=info[1], stdout=subprocess.DEVNULL, stderr=stderr,
                                start_new_session=True)


async def time_to_recover(fleet: Fleet, agent: str, ids: list[str], since: float,
                          limit_s: float) -> list[float]:
    """Seconds from ``since`` until each id is out of ``running`` with its slot freed."""
    done: dict[str, float] = {}
    deadline = time.monotonic() + limit_s
    while len(done) < len(ids) and time.monotonic() < deadline:
        statuses = await fleet.plane.db.executions.statuses(ids)
        held = await fleet.plane.redis.slots.holders(agent)
        now = time.time()
        for eid in ids:
            if eid not in done and statuses[eid] is not ExecutionStatus.RUNNING and eid not in held:
                done[eid] = now - since
        await asyncio.sleep(POLL_S)
    if len(done) < len(ids):
        raise SystemExit(f"{len(ids) - len(done)} executions still running after {limit_s} s")
    return list(done.values())


async def time_to_answer(url: str, since: float) -> float:
    """Seconds from ``since`` until the restarted runtime answers ``/health`` (its start-up)."""
    async with httpx.AsyncClient(base_url=url, timeout=1.0) as client:
        while True:
            try:
                if (await client.get("/health")).is_success:
                    return time.time() - since
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.02)


async def duplicates(fleet: Fleet) -> tuple[int, int]:
    """(executions started twice, retries started before the attempt they replace ended). A
    child killed with SIGKILL logs no end; the callers check those retries against the kill."""
    starts, ends = read_log(fleet.log)
    twice = sum(1 for seen in starts.values() if len(seen) > 1)
    overlaps = sum(
        1 for row in await fleet.plane.db.executions.list(limit=100_000)
        if row.retry_of and row.id in starts and row.retry_of in ends
        and ends[row.retry_of][0] > starts[row.id][0]
    )
    return twice, overlaps


async def faults(tmp: Path) -> dict[str, Any]:
    settings = load_settings(data_dir=tmp / "faults", log_level="WARNING")
    fleet = await open_fleet(settings, sleep_s=30, slots=PER_AGENT)
    try:
        ids = {f"bench-{i}": await submit_many(fleet, f"bench-{i}", PER_AGENT)
               for i in range(AGENTS)}
        await wait_running(fleet, [e for batch in ids.values() for e in batch])
        first, second = fleet.runtimes.runtimes["bench-0"], fleet.runtimes.runtimes["bench-1"]
        info = kill_with_children(first.process.pid)
        killed_ns = time.time_ns()
        restarted_at = time.time()
        fleet.extra.append(restart(info, first.url, tmp / "restarted.log"))
        answering = asyncio.create_task(time_to_answer(first.url, restarted_at))
        restart_s = await time_to_recover(fleet, "bench-0", ids["bench-0"], restarted_at, 60)
        up_s = await answering
        kill_with_children(second.process.pid)
        lost_at = time.time()
        lost_s = await time_to_recover(fleet, "bench-1", ids["bench-1"], lost_at,
                                       settings.watchdog_agent_lost_after_s + 60)
        await asyncio.sleep(35)  # the other agents' children finish; the retries run
        twice, overlaps = await duplicates(fleet)
        healthy = ids["bench-2"] + ids["bench-3"]
        statuses = await fleet.plane.db.executions.statuses(healthy)
        starts, _ = read_log(fleet.log)
        late_retries = sum(1 for row in await fleet.plane.db.executions.list(limit=100_000)
                           if row.retry_of in ids["bench-0"] and row.id in starts
                           and starts[row.id][0] < killed_ns)
        return {
            "restart_s": restart_s, "up_s": up_s, "lost_s": lost_s, "lost_after_s":
                settings.watchdog_agent_lost_after_s, "twice": twice, "overlaps": overlaps
                + late_retries, "healthy_ok": sum(1 for s in statuses.values()
                                                  if s is ExecutionStatus.SUCCESS),
            "healthy": len(healthy),
        }
    finally:
        await fleet.close()


async def clean_run(tmp: Path, minutes: float) -> dict[str, Any]:
    settings = load_settings(data_dir=tmp / "clean", log_level="WARNING", watchdog_interval_s=1)
    slots, sleep_s = 10, 90
    fleet = await open_fleet(settings, sleep_s=sleep_s, slots=slots)
    try:
        end = time.monotonic() + minutes * 60
        submitted: list[str] = []
        while time.monotonic() < end:
            for i in range(AGENTS):  # keep every slot busy and a little backlog
                if await fleet.plane.db.executions.backlog_depth(f"bench-{i}") < 2:
                    submitted += await submit_many(fleet, f"bench-{i}", 2)
            await asyncio.sleep(1)
        rows = [await fleet.plane.db.executions.get(e) for e in submitted]
        false = [r.id for r in rows if r.error_class in RECOVERIES]
        twice, overlaps = await duplicates(fleet)
        registry = fleet.plane.telemetry.registry
        actions = {kind: registry.get_sample_value("shepherd_watchdog_actions_total",
                                                   {"kind": kind}) or 0
                   for kind in ("timed_out", "orphaned", "lost", "strays", "retried",
                                "handed_over")}
        cycles = registry.get_sample_value("shepherd_watchdog_cycle_seconds_count",
                                           {"scope": "full"}) or 0
        return {"minutes": minutes, "submitted": len(rows), "succeeded": sum(
            1 for r in rows if r.status is ExecutionStatus.SUCCESS), "false": len(false),
            "twice": twice, "overlaps": overlaps, "cycles": int(cycles),
            "actions": json.dumps({k: int(v) for k, v in actions.items()}, sort_keys=True)}
    finally:
        await fleet.close()


def record(f: dict[str, Any], c: dict[str, Any], load: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    r, lost = f["restart_s"], f["lost_s"]
    target_lost = f["lost_after_s"] + 5
    return (
        f"\n### recovery — {when} — {platform.machine()}, {platform.python_version()}\n\n"
        f"`python bench/recovery.py --clean-minutes {c['minutes']:g}` — {AGENTS} local agents x "
        f"{PER_AGENT} executions of `sleep 30` in flight, max_attempts 2, default watchdog "
        f"settings, SQLite + embedded Redis; load average {load:.1f} on "
        f"{os.cpu_count()} cores when it started.\n\n"
        "| figure | value | target |\n|---|---|---|\n"
        f"| runtime restarted: {len(r)} lost, to next state + slot freed, p50 / p95 / max "
        f"| {percentile(r, .5):.2f} / {percentile(r, .95):.2f} / {max(r):.2f} s | p95 ≤ 5 s |\n"
        f"| of which the new runtime process starting until it answers `/health` "
        f"| {f['up_s']:.2f} s | — |\n"
        f"| runtime never returns: {len(lost)} lost, from the kill, p50 / p95 / max "
        f"| {percentile(lost, .5):.1f} / {percentile(lost, .95):.1f} / {max(lost):.1f} s "
        f"| ≤ {target_lost:g} s |\n"
        f"| executions started twice | {f['twice']} | 0 |\n"
        f"| retries started before the attempt they replace ended | {f['overlaps']} | 0 |\n"
        f"| untouched agents' executions succeeded | {f['healthy_ok']}/{f['healthy']} | all |\n"
        f"| clean run, watchdog every 1 s: {c['minutes']:g} min, {c['submitted']} executions "
        f"of `sleep 90` | {c['false']} false recoveries, {c['twice']} started twice | 0 |\n"
        f"| clean run: watchdog actions over {c['cycles']} full cycles | `{c['actions']}` "
        "| all 0 |\n"
        f"| clean run succeeded (the rest were in flight at the end) | {c['succeeded']}"
        f"/{c['submitted']} | — |\n"
    )


async def main(args: argparse.Namespace) -> str:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="shepherd-bench-") as tmp:
        f = await faults(Path(tmp))
        print(f"restart p95 {percentile(f['restart_s'], .95):.2f} s, never-returns max "
              f"{max(f['lost_s']):.1f} s; clean run of {args.clean_minutes} min next", flush=True)
        c = await clean_run(Path(tmp), args.clean_minutes)
    return record(f, c, load)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean-minutes", type=float, default=10.0)
    text = asyncio.run(main(parser.parse_args()))
    print(text)
    DOCS.parent.mkdir(exist_ok=True)
    with DOCS.open("a", encoding="utf-8") as handle:
        handle.write(text)
