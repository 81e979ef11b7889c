"""Sentinel benchmark: what one scan costs the host.

With N extra ``sleep`` processes on the host (their command line carries a marker pattern):

1. the process table read alone (``collect_process_table``), without and with process groups:
   wall and CPU milliseconds per scan, and how many processes it read; then the details pass
   (``read_details``: user and CPU time) over the W watched processes;
2. a whole scan (``Sentinel.run_once``: runtime records, process table, signals, the alert engine
   on its SQLite file) while W of those processes are watched and active: the first scan (W
   ALERTs written) and a steady scan (all NONE), wall and CPU milliseconds.

Prints the figures and appends them to docs/benchmarks.md.

    python bench/sentinel.py [--processes 500] [--watched 100] [--scans 20]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import psutil

from shepherd.app.sentinel import SentinelOptions, open_sentinel
from shepherd.core.clock import ManualClock
from shepherd.sentinel.collector import collect_process_table, read_details
from shepherd.sentinel.config import SentinelConfig
from shepherd.settings import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def spawn(marker: str, watched: int, others: int) -> list[subprocess.Popen[bytes]]:
    sleep = shutil.which("sleep")
    names = [marker] * watched + ["bench-idle"] * others
    return [subprocess.Popen([name, "600"], executable=sleep) for name in names]


def timed_sync(work: Callable[[], object], scans: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(scans):
        work()
    return ((time.perf_counter() - wall) * 1000 / scans,
            (time.process_time() - cpu) * 1000 / scans)


async def timed(work: Callable[[], Awaitable[object]], scans: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(scans):
        await work()
    return ((time.perf_counter() - wall) * 1000 / scans,
            (time.process_time() - cpu) * 1000 / scans)


async def whole_scan(marker: str, watched: int, scans: int, created_ms: int) -> dict[str, str]:
    config = SentinelConfig(enabled=True, patterns=(marker,))
    clock = ManualClock(created_ms + 3_600_000)
    with tempfile.TemporaryDirectory() as tmp:
        sentinel, db = await open_sentinel(SentinelOptions(Path(tmp)), config, clock,
                                           Settings.model_construct())
        try:
            first_wall, first_cpu = await timed(sentinel.run_once, 1)
            report = await sentinel.run_once()
            assert len(report.active) == watched, (len(report.active), watched)
            wall, cpu = await timed(sentinel.run_once, scans)
        finally:
            await sentinel.close()
            await db.close()
    return {
        f"first scan, {watched} ALERTs written": f"{first_wall:.0f} ms ({first_cpu:.0f} ms CPU)",
        f"steady scan, {watched} watched (all NONE)": f"{wall:.0f} ms ({cpu:.0f} ms CPU)",
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=500)
    parser.add_argument("--watched", type=int, default=100)
    parser.add_argument("--scans", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("shepherd.alerts").setLevel(logging.ERROR)  # one line per ALERT otherwise
    marker = f"bench-sentinel-{uuid.uuid4().hex[:6]}"
    children = spawn(marker, args.watched, args.processes - args.watched)
    try:
        created_ms = round(max(psutil.Process(c.pid).create_time() for c in children) * 1000)
        rows = len(collect_process_table(with_groups=False))
        plain = timed_sync(lambda: collect_process_table(with_groups=False), args.scans)
        groups = timed_sync(lambda: collect_process_table(with_groups=True), args.scans)
        watched = [r for r in collect_process_table(False) if marker in r.command_line]
        details = timed_sync(lambda: read_details(watched), args.scans)
        figures = {
            f"process table read, {rows} processes": f"{plain[0]:.0f} ms ({plain[1]:.0f} ms CPU)",
            "... with process groups": f"{groups[0]:.0f} ms ({groups[1]:.0f} ms CPU)",
            "per process read": f"{plain[1] * 1000 / rows:.0f} µs CPU",
            f"details of {len(watched)} watched": f"{details[0]:.0f} ms ({details[1]:.0f} ms CPU)",
        }
        figures.update(await whole_scan(marker, args.watched, args.scans, created_ms))
    finally:
        for child in children:
            child.kill()
        for child in children:
            child.wait()
    report(figures, args)


def report(figures: dict[str, str], args: argparse.Namespace) -> None:
    width = max(len(k) for k in figures)
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### sentinel — {stamp} — {platform.machine()}, {platform.python_version()}", "",
        f"`python bench/sentinel.py --processes {args.processes} --watched {args.watched} "
        f"--scans {args.scans}` — SQLite, no sink.", "",
        "| figure | value |", "|---|---|",
        *[f"| {name} | {value} |" for name, value in figures.items()], "",
    ]
    with DOCS.open("a", encoding="utf-8") as docs:
        docs.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
