"""Live updates benchmark: does the dashboard keep up with 200 transitions/s?

Processes, as in production: this one serves the API and dashboard (uvicorn, the event hub
following SQL); a writer process (standing in for another control-plane replica) makes
executions go queued -> running -> finalizing -> success through the store's CAS at a fixed rate
of transitions, and changes an agent every ``--fleet-every`` transitions (an ``agent.changed``
fleet event, which re-renders that agent's row on the fleet page; 0: never); a client process holds
``--clients`` WebSocket subscribers (scripts); Chromium shows the executions page and the fleet
page.

Figures: transitions written per second; for the page and for the script clients, how many
events arrived and how late (from the transition's commit to the page applying it, or to the
script receiving it: p50/p95/max), gaps (events dropped for a client that fell behind), how long
after the writer stopped the page had everything; the page's fragment refreshes (coalesced);
the serving process's CPU; and whether the statuses the page shows match the store at the end.
Appends them to docs/benchmarks.md.

    python bench/dashboard_live.py [--rate 200] [--seconds 30] [--clients 20] [--fleet-every 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from benchmarks_file import append_figures
from dashboard_setup import (
    Bench,
    bench_dashboard,
    bulk_insert,
    create_agents,
    percentile,
    seed_rows,
)

from shepherd.background import GuardedTask
from shepherd.clock import SystemClock
from shepherd.core.ids import AgentName
from shepherd.core.models import Trigger
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.stores.sql.database import open_database

HERE = str(Path(__file__).resolve())
AGENTS = [f"agent-{i:02d}" for i in range(10)]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
S = ExecutionStatus
# One agent change per this many transitions: 10/s at the default rate, far more than a real
# fleet's agents, circuits and alerts change.
DEFAULT_FLEET_EVERY = 20


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the writer: another replica making transitions ------------------------------------------

async def write(url: str, rate: float, seconds: float, fleet_every: int) -> None:
    db = await open_database(url, SystemClock())
    in_flight: list[tuple[str, int]] = []  # (execution id, transitions made)
    written, changed, started = 0, 0, time.perf_counter()
    try:
        for i in range(int(rate * seconds)):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if i % 4 == 0 or not in_flight:
                row = await db.executions.submit(
                    agent=AgentName(AGENTS[i % len(AGENTS)]), input="live", created_by="bench",
                    trigger=Trigger.API)
                in_flight.append((row.id, 1))
            else:
                execution_id, made = in_flight.pop(0)
                await advance(db, execution_id, made)
                if made < 3:
                    in_flight.append((execution_id, made + 1))
            written += 1
            if fleet_every and i % fleet_every == fleet_every - 1:
                name = AGENTS[(i // fleet_every) % len(AGENTS)]
                await db.agents.update(name, actor="bench", tags=[f"t{i}"])
                changed += 1
    finally:
        await db.close()
    elapsed = time.perf_counter() - started
    print(json.dumps({"written": written, "fleet": changed, "seconds": elapsed}), flush=True)


async def advance(db: Any, execution_id: str, made: int) -> None:
    now = int(time.time() * 1000)
    if made == 1:
        await db.executions.claim_queued(execution_id, now, "bench")
    elif made == 2:
        await db.executions.transition(execution_id, S.FINALIZING, Cause.CHILD_EXITED,
                                       actor="bench", now_ms=now)
    else:
        await db.executions.transition(execution_id, S.SUCCESS, Cause.FINALIZED, actor="bench",
                                       now_ms=now)


# -- the script clients --------------------------------------------------------------------

async def listen(url: str, token: str, clients: int, expect: int, limit_s: float) -> None:
    from websockets.asyncio.client import connect

    async def one() -> dict[str, Any]:
        lags: list[float] = []
        gaps = 0
        async with connect(f"{url}/api/events", additional_headers={
                "Authorization": f"Bearer {token}"}, max_size=None) as ws:
            deadline = time.monotonic() + limit_s
            while len(lags) < expect and time.monotonic() < deadline:
                try:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                except TimeoutError:
                    continue
                now = time.time() * 1000
                gaps += message["kind"] == "gap"
                lags.extend(now - e["at_ms"] for e in message.get("events", []))
        return {"lags": lags, "gaps": gaps}

    results = await asyncio.gather(*(one() for _ in range(clients)))
    print(json.dumps(results), flush=True)


# -- the measurement ------------------------------------------------------------------------

async def serve(bench: Bench, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(bench.app, host="127.0.0.1", port=port,
                                           lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    return server, task


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    async with bench_dashboard(tmp) as bench:
        await create_agents(bench.db, AGENTS)
        await bulk_insert(bench.db, seed_rows(AGENTS, 2_000, int(time.time() * 1000),
                                              3_600_000, 0))
        port = free_port()
        server, serving = await serve(bench, port)
        follower = GuardedTask("live-events", bench.hub.run)
        follower.start()
        base = f"http://127.0.0.1:{port}"
        transitions = int(args.rate * args.seconds)
        expect = transitions + (transitions // args.fleet_every if args.fleet_every else 0)
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                           args=CHROMIUM_FLAGS)
                context = await browser.new_context(viewport={"width": 1280, "height": 800})
                await context.add_cookies([{"name": k, "value": v, "url": base}
                                           for k, v in bench.cookie.items()])
                fleet = await context.new_page()
                await fleet.goto(f"{base}/")
                page = await context.new_page()
                await page.goto(f"{base}/executions")
                for p in (fleet, page):
                    await p.wait_for_function("() => window.shepherdLive.state === 'live'")
                return await run_load(args, bench, base, page, fleet, expect)
        finally:
            await follower.stop()
            server.should_exit = True
            await serving


async def run_load(args: argparse.Namespace, bench: Bench, base: str, page: Any, fleet: Any,
                   expect: int) -> dict[str, Any]:
    token = await _token(bench)
    listeners = await asyncio.create_subprocess_exec(
        sys.executable, HERE, "--listen", base.replace("http", "ws"), token, str(args.clients),
        str(expect), str(args.seconds + 60), stdout=asyncio.subprocess.PIPE)
    await asyncio.sleep(1.0)  # the listeners connect
    load_before = os.getloadavg()[0]  # a shared machine: the figures move with its load
    cpu0, wall0 = cpu_s(), time.perf_counter()
    writer = await asyncio.create_subprocess_exec(
        sys.executable, HERE, "--write", bench.settings.resolved_database_url, str(args.rate),
        str(args.seconds), str(args.fleet_every), stdout=asyncio.subprocess.PIPE)
    out, _ = await writer.communicate()
    wrote = json.loads(out.decode().strip().splitlines()[-1])
    cpu, wall = cpu_s() - cpu0, time.perf_counter() - wall0
    load = f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    stopped = time.perf_counter()
    total = wrote["written"] + wrote["fleet"]
    await page.wait_for_function(f"() => window.shepherdLive.events >= {total}", timeout=60_000)
    drain_s = time.perf_counter() - stopped
    await asyncio.sleep(1.5)  # the last throttled refresh lands
    stats = await page.evaluate("() => window.shepherdLive")
    fleet_stats = await fleet.evaluate("() => window.shepherdLive")
    mismatches = await compare(bench, page)
    heard, _ = await asyncio.wait_for(listeners.communicate(), 120)
    clients = json.loads(heard.decode().strip().splitlines()[-1])
    return {"wrote": wrote, "cpu_percent": 100 * cpu / wall, "drain_s": drain_s, "load": load,
            "page": stats, "fleet": fleet_stats, "mismatches": mismatches, "clients": clients}


async def _token(bench: Bench) -> str:
    from shepherd.services.tokens import Role, create_token

    made = await create_token(bench.db, name="listener", role=Role.VIEWER, agent=None,
                              now_ms=int(time.time() * 1000))
    return made.secret


async def compare(bench: Bench, page: Any) -> int:
    """Rows on the page whose status differs from the store's, once everything arrived."""
    shown = await page.evaluate("""() => Array.from(
        document.querySelectorAll('#execution-rows [data-execution-status]'))
        .map(el => [el.dataset.executionStatus, el.textContent])""")
    wrong = 0
    for execution_id, status in shown:
        if (await bench.db.executions.get(execution_id)).status.value != status:
            wrong += 1
    return wrong


def record(args: argparse.Namespace, r: dict[str, Any]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    page, wrote = r["page"], r["wrote"]
    lags = page["lags"]
    client_lags = [lag for c in r["clients"] for lag in c["lags"]]
    received = [len(c["lags"]) for c in r["clients"]]
    rows = [
        ("transitions written", f"{wrote['written']} in {wrote['seconds']:.1f} s = "
         f"{wrote['written'] / wrote['seconds']:.0f}/s", f"{args.rate:.0f}/s"),
        ("agent changes written (fleet events)", str(wrote["fleet"]), "—"),
        ("page: events received", f"{page['events']} of {wrote['written'] + wrote['fleet']}",
         "all"),
        ("page: lag, commit to shown, p50 / p95 / max",
         f"{percentile(lags, .5):.0f} / {percentile(lags, .95):.0f} / {max(lags):.0f} ms", "—"),
        ("page: lag p50, first third / last third of the run",
         f"{percentile(lags[:len(lags) // 3], .5):.0f} / "
         f"{percentile(lags[-len(lags) // 3:], .5):.0f} ms", "no growth"),
        ("page: had everything, after the writer stopped", f"{r['drain_s']:.2f} s", "—"),
        ("page: gaps (fell behind, resynced)", str(page["gaps"]), "0"),
        ("page: messages / fragment refreshes", f"{page['messages']} / {page['refreshes']}",
         "coalesced"),
        ("fleet page: fragment refreshes (region + agent rows)", str(r["fleet"]["refreshes"]),
         "≤ 1/s per region"),
        ("statuses shown that differ from the store", str(r["mismatches"]), "0"),
        (f"{args.clients} script clients: events received (min)", f"{min(received)}", "all"),
        ("script clients: lag p50 / p95 / max",
         f"{percentile(client_lags, .5):.0f} / {percentile(client_lags, .95):.0f} / "
         f"{max(client_lags):.0f} ms", "—"),
        ("script clients: gaps", str(sum(c["gaps"] for c in r["clients"])), "0"),
        ("serving process CPU (API, hub, pages)", f"{r['cpu_percent']:.0f} %", "—"),
    ]
    return (
        f"\n### dashboard live updates — {when} — {platform.machine()}, "
        f"{platform.python_version()}\n\n"
        f"`python bench/dashboard_live.py --rate {args.rate:.0f} --seconds {args.seconds:.0f} "
        f"--clients {args.clients} --fleet-every {args.fleet_every}` — SQLite + embedded Redis; "
        f"load average {r['load']}; the "
        "writer is a separate process "
        "(another replica); Chromium shows the executions page and the fleet page; event hub "
        "interval 0.2 s.\n\n| figure | value | target |\n|---|---|---|\n"
        + "".join(f"| {a} | {b} | {c} |\n" for a, b, c in rows)
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--write":
        asyncio.run(write(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--listen":
        asyncio.run(listen(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
                           float(sys.argv[6])))
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--rate", type=float, default=200.0)
        parser.add_argument("--seconds", type=float, default=30.0)
        parser.add_argument("--clients", type=int, default=20)
        parser.add_argument("--fleet-every", type=int, default=DEFAULT_FLEET_EVERY)
        arguments = parser.parse_args()
        with tempfile.TemporaryDirectory(prefix="shepherd-bench-") as tmp_dir:
            result = asyncio.run(measure(arguments, Path(tmp_dir)))
        append_figures(record(arguments, result))
