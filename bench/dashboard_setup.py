"""What the dashboard benchmarks share: stores in a temporary data dir, the API app with the
dashboard installed (no controllers: the benchmark makes the changes itself), a signed-in session,
a bulk seed of executions, and the benchmarks file.

Seeding writes rows with SQLAlchemy Core straight into the tables (100,000 executions through the
admission path would take longer than the measurement and measure something else); everything
measured goes through the dashboard's own code.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import insert

from shepherd.agent_client.pool import AgentClientPool
from shepherd.api.app import create_api
from shepherd.api.context import ApiContext
from shepherd.api.session_auth import SESSION_COOKIE
from shepherd.clock import SystemClock
from shepherd.controllers.base import Wakeup
from shepherd.controllers.directory import PooledDirectory
from shepherd.core.ids import ENTROPY_BYTES, AgentName, format_execution_id
from shepherd.services.event_hub import EventHub
from shepherd.services.event_sources import ExecutionTransitions, FleetEvents
from shepherd.services.sessions import sign_in_with_token
from shepherd.services.tokens import Role, create_token
from shepherd.settings import Settings, load_settings
from shepherd.stores.redis.connection import RedisHandle, connect_redis
from shepherd.stores.sql.database import Database, open_database
from shepherd.stores.sql.tables import executions
from shepherd.web import install_dashboard

TERMINAL_MIX = (("success", 0.94), ("failed", 0.04), ("cancelled", 0.01), ("skipped", 0.01))


@dataclass
class Bench:
    settings: Settings
    db: Database
    redis: RedisHandle
    app: FastAPI
    hub: EventHub
    cookie: dict[str, str]


@asynccontextmanager
async def bench_dashboard(data_dir: Path, database_url: str | None = None) -> AsyncIterator[Bench]:
    settings = load_settings(data_dir=data_dir, database_url=database_url, log_level="WARNING")
    clock = SystemClock()
    db = await open_database(settings.resolved_database_url, clock)
    redis = await connect_redis(settings.redis_url, data_dir, settings.redis_prefix)
    pool = AgentClientPool()
    hub = EventHub([ExecutionTransitions(db), FleetEvents(db)], clock,
                   settings.events_poll_interval_s)
    ctx = ApiContext(db=db, redis=redis, settings=settings, clock=clock,
                     directory=PooledDirectory(pool, "bench-token-0123456789"),
                     dispatch_wakeup=Wakeup(), controller_ticks=dict, events=hub)
    app = create_api(ctx)
    install_dashboard(app)
    made = await create_token(db, name="bench", role=Role.ADMIN, agent=None, now_ms=clock.now_ms())
    opened = await sign_in_with_token(db, redis, made.secret, now_ms=clock.now_ms(), ttl_s=3600)
    try:
        yield Bench(settings, db, redis, app, hub, {SESSION_COOKIE: opened.secret})
    finally:
        await pool.aclose()
        await redis.close()
        await db.close()


async def create_agents(db: Database, names: Sequence[str], max_parallel: int = 4) -> None:
    for name in names:
        await db.agents.create(name=AgentName(name), url=f"http://{name}.invalid:9", command=None,
                               max_parallel_tasks=max_parallel, max_backlog_depth=100_000)


def seed_rows(agents: Sequence[str], count: int, now_ms: int, span_ms: int,
              in_flight: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` executions spread over ``span_ms`` before now: mostly finished, a few in flight."""
    rnd = random.Random(seed)
    statuses, weights = zip(*TERMINAL_MIX, strict=True)
    rows = []
    for i in range(count):
        created = now_ms - rnd.randrange(span_ms)
        status = ("queued" if i % 2 else "running") if i < in_flight else rnd.choices(
            statuses, weights)[0]
        finished = created + rnd.randrange(500, 120_000)
        done = status not in ("queued", "running")
        rows.append({
            "id": format_execution_id(created, os.urandom(ENTROPY_BYTES)),
            "agent": agents[i % len(agents)], "schedule_id": None, "trigger": "api",
            "input": "bench", "status": status, "attempt": 1, "max_attempts": 1,
            "retry_of": None, "timeout_s": 900, "queued_at_ms": created,
            "dispatched_at_ms": None if status == "queued" else created + 5,
            "started_at_ms": None if status == "queued" else created + 20,
            "finished_at_ms": finished if done else None,
            "completed_at_ms": min(finished, now_ms) if done else None,
            "exit_code": (0 if status == "success" else 1) if done else None,
            "error_class": None, "error": None, "output_tail": None, "runtime_boot_id": None,
            "pid": None, "created_by": "bench", "created_at_ms": created,
        })
    return rows


async def bulk_insert(db: Database, rows: Sequence[dict[str, Any]], chunk: int = 5_000) -> None:
    for start in range(0, len(rows), chunk):
        async with db.engine.begin() as conn:
            await conn.execute(insert(executions), list(rows[start:start + chunk]))


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")
