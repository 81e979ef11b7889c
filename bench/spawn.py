"""Spawn benchmark: how fast the agent runtime starts, supervises and reaps trivial children.

Figures from the same run on the same machine:

1. floor: a bare loop in one process, ``subprocess.Popen(["true"]).wait()`` N times — what any
   design here pays for a fork/exec and a reap;
2. spawn mechanisms alone, N children of ``true`` at most ``--concurrency`` at once, each spawned
   with piped stdin/stdout in a new session, awaited and reaped: asyncio's
   ``create_subprocess_exec`` + ``wait()`` (what the runtime used before) against
   ``process.ChildProcess`` (``posix_spawn`` + a pidfd on the event loop);
3. runtime: N executions of ``true`` through the runtime's registry in this process (no HTTP),
   each started, fed, awaited, reaped, persisted and acked; executions/s and the runtime's CPU
   per execution (children are other processes).

Prints the figures and appends them to docs/benchmarks.md. ``--runtime-only`` measures 3 alone,
prints it and appends nothing: it also runs against an older tree of the package, for a
before/after comparison on the same machine (``PYTHONPATH=old/src python bench/spawn.py
--runtime-only``, alternating with the current tree).

    python bench/spawn.py [--executions 2000] [--concurrency 16] [--runtime-only]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import resource
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from shepherd.agent_client.protocol import StartRequest
from shepherd.agent_runtime.config import RuntimeConfig
from shepherd.agent_runtime.events import EventLog
from shepherd.agent_runtime.registry import RunRegistry

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_floor(n: int) -> float:
    """Children/s of a bare spawn-and-wait loop."""
    began = time.perf_counter()
    for _ in range(n):
        subprocess.Popen(["true"]).wait()
    return n / (time.perf_counter() - began)


async def measure_asyncio_spawn(n: int, concurrency: int) -> tuple[float, float]:
    limit = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with limit:
            process = await asyncio.create_subprocess_exec(
                "true", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True)
            assert process.stdin is not None
            process.stdin.close()
            await process.communicate()

    return await _timed(n, one)


async def measure_pidfd_spawn(n: int, concurrency: int) -> tuple[float, float]:
    from shepherd.agent_runtime.process import ChildProcess

    limit = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with limit:
            child = ChildProcess.spawn(["true"], {"PATH": "/usr/bin:/bin"}, b"", lambda _: None)
            await child.exited.wait()
            child.finish_input()
            child.reap()
            child.drain_output()
            child.close()

    return await _timed(n, one)


async def _timed(n: int, one: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    cpu0, began = cpu_s(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    wall, cpu = time.perf_counter() - began, cpu_s() - cpu0
    return n / wall, cpu * 1000 / n


async def measure_runtime(n: int, concurrency: int, root: Path) -> tuple[float, float]:
    """Executions/s through the registry and the runtime's CPU ms per execution."""
    config = RuntimeConfig(name="bench", command=("true",), data_dir=root, max_retained=n + 1)
    config.executions_dir.mkdir(parents=True, exist_ok=True)
    registry = RunRegistry(config, uuid.uuid4().hex, EventLog())
    await registry.recover()
    limit = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with limit:
            eid = f"e{i}"
            await registry.start(StartRequest(execution_id=eid, input="", timeout_s=60))
            record = await registry.wait_finished(eid, 60)
            assert record.exit_code == 0, (eid, record)
            registry.ack(eid)

    cpu0, began = cpu_s(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall, cpu = time.perf_counter() - began, cpu_s() - cpu0
    await registry.shutdown()
    return n / wall, cpu * 1000 / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--label", default="")
    parser.add_argument("--runtime-only", action="store_true")
    args = parser.parse_args()
    n, k = args.executions, args.concurrency
    if args.runtime_only:
        with tempfile.TemporaryDirectory() as tmp:
            rate, cpu_ms = asyncio.run(measure_runtime(n, k, Path(tmp)))
        print(f"runtime: {rate:.0f} executions/s, {cpu_ms:.2f} ms CPU each")
        return
    floor = measure_floor(n)
    old_rate, old_cpu = asyncio.run(measure_asyncio_spawn(n, k))
    new_rate, new_cpu = asyncio.run(measure_pidfd_spawn(n, k))
    with tempfile.TemporaryDirectory() as tmp:
        rate, cpu_ms = asyncio.run(measure_runtime(n, k, Path(tmp)))
    rows = [
        ("floor: bare Popen + wait loop", f"{floor:.0f} children/s"),
        ("spawn: asyncio create_subprocess_exec + wait",
         f"{old_rate:.0f} children/s, {old_cpu:.2f} ms CPU each"),
        ("spawn: posix_spawn + pidfd (ChildProcess)",
         f"{new_rate:.0f} children/s, {new_cpu:.2f} ms CPU each"),
        (f"runtime: {args.executions} x `true`, {args.concurrency} at once",
         f"{rate:.0f} executions/s ({rate / floor:.2f} of the floor)"),
        ("runtime CPU per execution", f"{cpu_ms:.2f} ms"),
    ]
    for name, value in rows:
        print(f"{name:<45} {value}")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    label = f" — {args.label}" if args.label else ""
    lines = [
        f"\n### spawn{label} — {stamp} — {platform.machine()}, {platform.python_version()}\n",
        f"`python bench/spawn.py --executions {args.executions} "
        f"--concurrency {args.concurrency}` — the runtime's registry in process, no HTTP.\n",
        "| figure | value |", "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
    ]
    with DOCS.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
