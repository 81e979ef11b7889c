"""Outbox benchmark: what the durable webhook costs the finalizer, and how fast the sender drains.

On SQLite in a temporary directory, against a local HTTP receiver answering 200:

1. transition cost: N terminal transitions ``finalizing -> success`` without, then with, one
   completion-webhook outbox message each (the same transaction); mean ms per transition.
2. drain: N deliveries over 8 destinations (4 in flight each) sent by one ``OutboxSender``;
   deliveries/s from the first pass to the last settled row.
3. isolation: one destination whose receiver hangs, N deliveries to 4 others; the drain rate of
   the others while every slot of the hung one is held.

Prints the figures and appends them to docs/benchmarks.md.

    python bench/outbox.py [--rows 400]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import update

from shepherd.clock import SystemClock
from shepherd.controllers.delivery import ConfiguredDestinations
from shepherd.controllers.outbox import OutboxConfig, OutboxSender
from shepherd.core.ids import AgentName
from shepherd.core.models import Trigger
from shepherd.core.outbox import DeliveryStatus, OutboxMessage, SinkKind
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.stores.sql.database import Database, open_database
from shepherd.stores.sql.tables import executions

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.fixtures.receiver import Answer, receiving

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def hook(eid: str, agent: str) -> OutboxMessage:
    return OutboxMessage(destination=f"completion:{agent}", sink=SinkKind.COMPLETION,
                         topic="completion", subject=eid, idempotency_key=f"{eid}:1",
                         payload={"execution_id": eid, "status": "success"}, max_age_s=3600)


async def finalizing_rows(db: Database, agent: str, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        row = await db.executions.submit(agent=AgentName(agent), input="x", trigger=Trigger.API,
                                         created_by="bench")
        ids.append(row.id)
    async with db.engine.begin() as conn:
        await conn.execute(update(executions).where(executions.c.id.in_(ids))
                           .values(status=ExecutionStatus.FINALIZING.value))
    return ids


async def transition_ms(db: Database, ids: list[str], with_hook: bool) -> float:
    started = time.perf_counter()
    for eid in ids:
        await db.executions.transition(
            eid, ExecutionStatus.SUCCESS, Cause.FINALIZED, actor="bench",
            now_ms=db.clock.now_ms(), outbox=[hook(eid, "a0")] if with_hook else (),
        )
    return (time.perf_counter() - started) * 1000 / len(ids)


async def drain_rate(db: Database, sender: OutboxSender, agents: list[str], n: int) -> float:
    await db.outbox.enqueue([hook(f"d{i}-{time.time_ns()}", agents[i % len(agents)])
                             for i in range(n)])
    delivered = DeliveryStatus.DELIVERED.value
    target = (await db.outbox.counts()).get(("completion", delivered), 0) + n
    started = time.perf_counter()
    while (await db.outbox.counts()).get(("completion", delivered), 0) < target:
        await sender.run_once()
        await asyncio.sleep(0.01)
    return n / (time.perf_counter() - started)


async def run(rows: int) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp, receiving() as ok, receiving() as hung:
        hung.default = Answer(hang=True)
        db = await open_database(f"sqlite+aiosqlite:///{tmp}/bench.db", SystemClock())
        try:
            agents = [f"a{i}" for i in range(8)]
            for name in agents:
                await db.agents.create(name=AgentName(name), url=None, command=("true",),
                                       max_backlog_depth=100_000,
                                       completion_webhook_url=f"{ok.url}/{name}")
            await db.agents.create(name=AgentName("hung"), url=None, command=("true",),
                                   completion_webhook_url=f"{hung.url}/hung")
            plain = await transition_ms(db, await finalizing_rows(db, "a0", rows), False)
            hooked = await transition_ms(db, await finalizing_rows(db, "a0", rows), True)
            sender = OutboxSender(db, db.clock, ConfiguredDestinations(db, {}), owner="bench",
                                  config=OutboxConfig(send_timeout_s=60))
            await drain_rate(db, sender, agents, rows + 1)  # step 1's webhooks, and warm-up
            rate = await drain_rate(db, sender, agents, rows)
            await db.outbox.enqueue([hook(f"h{i}", "hung") for i in range(8)])
            isolated = await drain_rate(db, sender, agents[:4], rows)
            hung.release()
            await sender.stop()
        finally:
            await db.close()
    return {
        "terminal transition, no webhook": f"{plain:.2f} ms",
        "terminal transition + outbox row": f"{hooked:.2f} ms",
        f"drain, {rows} deliveries over 8 receivers": f"{rate:.0f} deliveries/s",
        "drain of 4 receivers beside a hung one": f"{isolated:.0f} deliveries/s",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=400)
    figures = asyncio.run(run(parser.parse_args().rows))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"\n### outbox — {stamp} — {platform.machine()}, {platform.python_version()}\n",
             "`python bench/outbox.py` — SQLite, local receivers answering 200 (one hangs).\n",
             "| figure | value |", "|---|---|",
             *(f"| {k} | {v} |" for k, v in figures.items())]
    print("\n".join(lines))
    with DOCS.open("a", encoding="utf-8") as docs:
        docs.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
