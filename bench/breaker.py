"""Circuit breaker benchmark: what the fleet-wide breaker costs per call, and whether a drop burst
on a healthy agent is ever counted against it.

One real agent runtime (child ``cat``) and an embedded redis-server (unix socket, as ``shepherd
up`` runs it), in a temporary directory:

1. overhead: sequential ``GET /health`` calls through a pool with ``NullBreaker`` and through one
   with ``RedisBreaker``, alternating call by call in the same run; the p50 difference is what
   the breaker adds per call (target <= 0.3 ms). The breaker's own work (gate + verdict) is timed
   alone as well.
2. drop burst: 1,000 requests at concurrency 100 through a proxy in front of the healthy runtime
   that cuts every live connection at the start and then drops a share of new ones; counts the
   failures recorded against the agent (target 0) and what a breaker counting every exception
   would have seen.

Prints the figures and appends them to docs/benchmarks.md.

    python bench/breaker.py [--calls 4000] [--burst 1000] [--concurrency 100]
                            [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from dispatch import DOCS, percentile

from shepherd.agent_client.breaker import NullBreaker
from shepherd.agent_client.fleet_breaker import CACHE_S, RedisBreaker
from shepherd.agent_client.pool import AgentClientPool
from shepherd.app.runtimes import LocalRuntimes
from shepherd.core.classification import Verdict
from shepherd.core.clock import Clock
from shepherd.errors import AgentConnectionDropped
from shepherd.manifest.schema import AgentSpec
from shepherd.stores.redis.connection import RedisHandle, connect_redis
from shepherd.stores.redis.keys import DEFAULT_PREFIX

# The dropping proxy is the test suite's (tests/fixtures/servers.py): one implementation.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.fixtures.servers import DroppingProxy

TOKEN = "bench-agent-token-0123456789abcdef"
DROP_SHARE = 0.3


class WallClock(Clock):
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class CountingBreaker(RedisBreaker):
    """The real breaker, counting the verdicts it is handed."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.verdicts: Counter[Verdict] = Counter()

    async def record(self, agent: str, verdict: Verdict, detail: str = "") -> None:
        self.verdicts[verdict] += 1
        await super().record(agent, verdict, detail)


async def timed_calls(pool: AgentClientPool, url: str, n: int) -> list[float]:
    client = pool.client_for("bench", url, TOKEN)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await client.health()
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def breaker_alone(breaker: RedisBreaker, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await breaker.before("bench")
        await breaker.record("bench", Verdict.SUCCESS)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def overhead(redis: RedisHandle, url: str, calls: int) -> dict[str, float]:
    """Alternate the two pools call by call, so both see the same machine; the added cost is
    the median of the paired differences (and the difference of the medians)."""
    breaker = RedisBreaker(redis.circuits, redis.replicas, WallClock(), replica="bench")
    null_pool, breaker_pool = AgentClientPool(NullBreaker()), AgentClientPool(breaker)
    null_ms: list[float] = []
    breaker_ms: list[float] = []
    try:
        await timed_calls(null_pool, url, 200)  # warm both pools and the runtime
        await timed_calls(breaker_pool, url, 200)
        for i in range(calls):
            first, second = (null_pool, breaker_pool) if i % 2 else (breaker_pool, null_pool)
            one, other = await timed_calls(first, url, 1), await timed_calls(second, url, 1)
            null_ms += one if first is null_pool else other
            breaker_ms += other if first is null_pool else one
    finally:
        await null_pool.aclose()
        await breaker_pool.aclose()
    alone = await breaker_alone(breaker, calls)
    ticks = itertools.count(step=CACHE_S)  # every gate misses the cache: a Redis read per call
    uncached = RedisBreaker(redis.circuits, redis.replicas, WallClock(), replica="bench",
                            monotonic=lambda: float(next(ticks)))
    alone_uncached = await breaker_alone(uncached, calls)
    paired = [b - n for b, n in zip(breaker_ms, null_ms, strict=True)]
    return {"calls": len(null_ms), "null_p50": percentile(null_ms, 0.5),
            "breaker_p50": percentile(breaker_ms, 0.5),
            "added_p50": percentile(breaker_ms, 0.5) - percentile(null_ms, 0.5),
            "paired_p50": percentile(paired, 0.5),
            "null_p95": percentile(null_ms, 0.95), "breaker_p95": percentile(breaker_ms, 0.95),
            "alone_p50": percentile(alone, 0.5), "alone_p95": percentile(alone, 0.95),
            "uncached_p50": percentile(alone_uncached, 0.5),
            "uncached_p95": percentile(alone_uncached, 0.95)}


async def drop_burst(
    redis: RedisHandle, runtime_port: int, total: int, concurrency: int
) -> dict[str, float]:
    breaker = CountingBreaker(redis.circuits, redis.replicas, WallClock(), replica="bench")
    pool = AgentClientPool(breaker)
    proxy = DroppingProxy(runtime_port)
    await proxy.start()
    outcomes: Counter[str] = Counter()
    gate = asyncio.Semaphore(concurrency)
    client = pool.client_for("bench", proxy.url, TOKEN)

    async def one() -> None:
        async with gate:
            try:
                await client.list_executions()
                outcomes["answered"] += 1
            except AgentConnectionDropped:
                outcomes["dropped"] += 1
            except Exception as exc:  # anything else is what the target forbids
                outcomes[type(exc).__name__] += 1

    try:
        await asyncio.gather(*(one() for _ in range(concurrency)))  # warm the pool
        breaker.verdicts.clear()
        outcomes.clear()
        proxy.share = DROP_SHARE
        proxy.drop_all()
        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(total)))
        seconds = time.perf_counter() - t0
        circuit = await redis.circuits.read("bench")
        events = await redis.circuits.events("bench")
    finally:
        await proxy.stop()
        await pool.aclose()
    errors = total - outcomes["answered"]
    return {"requests": total, "concurrency": concurrency, "answered": outcomes["answered"],
            "dropped": outcomes["dropped"], "other": errors - outcomes["dropped"],
            "false_failures": breaker.verdicts[Verdict.FAILURE], "naive_failures": errors,
            "state": circuit.state.value, "transitions": len(events), "seconds": seconds,
            "proxy_dropped": proxy.dropped}


async def main(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="shepherd-bench-") as tmp:
        redis = await connect_redis(None, Path(tmp), DEFAULT_PREFIX)
        runtimes = LocalRuntimes(Path(tmp), TOKEN)
        try:
            await redis.client.flushall()
            runtime = await runtimes.start(AgentSpec(name="bench", command=("cat",)))
            first = await overhead(redis, runtime.url, args.calls)
            port = int(runtime.url.rsplit(":", 1)[1])
            second = await drop_burst(redis, port, args.burst, args.concurrency)
        finally:
            await runtimes.stop()
            await redis.close()
    return first, second


def record(first: dict[str, float], second: dict[str, float]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"\n### breaker — {when} — {platform.machine()}, {platform.python_version()}\n\n"
        "`python bench/breaker.py` — one local runtime (`cat`), embedded Redis on a unix "
        f"socket; {int(first['calls'])} sequential `GET /health` per pool, the pools alternating "
        f"call by call; burst through a proxy that cuts live connections and drops "
        f"{DROP_SHARE:.0%} of new ones. Load average at the end: "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n\n"
        "| figure | value | target |\n|---|---|---|\n"
        f"| call p50, `NullBreaker` | {first['null_p50']:.3f} ms | — |\n"
        f"| call p50, `RedisBreaker` | {first['breaker_p50']:.3f} ms | — |\n"
        f"| added per call, p50 (difference of the medians) | {first['added_p50']:.3f} ms "
        f"| ≤ 0.3 ms |\n"
        f"| added per call, median of paired differences | {first['paired_p50']:.3f} ms "
        f"| ≤ 0.3 ms |\n"
        f"| call p95, `NullBreaker` / `RedisBreaker` | {first['null_p95']:.3f} / "
        f"{first['breaker_p95']:.3f} ms | — |\n"
        f"| breaker alone (gate + verdict), p50 / p95 | {first['alone_p50']:.3f} / "
        f"{first['alone_p95']:.3f} ms | — |\n"
        f"| breaker alone, gate reading Redis every call, p50 / p95 | "
        f"{first['uncached_p50']:.3f} / {first['uncached_p95']:.3f} ms | — |\n"
        f"| drop burst: {int(second['requests'])} requests at concurrency "
        f"{int(second['concurrency'])} | {int(second['answered'])} answered, "
        f"{int(second['dropped'])} dropped, {int(second['other'])} other | no other |\n"
        f"| drop burst: failures recorded (false failures) | {int(second['false_failures'])} "
        f"| 0 |\n"
        f"| drop burst: circuit afterwards | {second['state']}, "
        f"{int(second['transitions'])} transitions | closed, 0 |\n"
        f"| drop burst: a breaker counting every exception would count | "
        f"{int(second['naive_failures'])} | — |\n"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--no-record", action="store_true", help="Print only.")
    options = parser.parse_args()
    first, second = asyncio.run(main(options))
    text = record(first, second)
    print(text)
    if not options.no_record:
        with DOCS.open("a", encoding="utf-8") as handle:
            handle.write(text)
