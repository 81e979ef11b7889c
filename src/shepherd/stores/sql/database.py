"""The SQL store as one object: engine, clock, instance id and the repositories.

``open_database`` creates the engine, migrates to head and reads (or creates) the instance id.
``fire_schedule`` advances a schedule and records its execution in ONE transaction, so a crash
never advances a schedule without its run, and two schedulers never fire one tick twice.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shepherd.core.clock import Clock
from shepherd.core.cron import Firing
from shepherd.core.models import Execution, Schedule, Trigger
from shepherd.core.timeouts import DEFAULT_EXECUTION_TIMEOUT_S
from shepherd.stores.sql.agents import AgentRepository
from shepherd.stores.sql.alerts import AlertStateRepository
from shepherd.stores.sql.canary_facts import CanaryFacts
from shepherd.stores.sql.engine import create_sql_engine, ensure_instance_id, migrate
from shepherd.stores.sql.errors import translated
from shepherd.stores.sql.executions import ExecutionRepository
from shepherd.stores.sql.feed import TransitionFeedRepository
from shepherd.stores.sql.fleet_events import FleetEventLog
from shepherd.stores.sql.outbox import OutboxRepository
from shepherd.stores.sql.schedules import ScheduleRepository
from shepherd.stores.sql.summaries import SummaryRepository
from shepherd.stores.sql.tokens import TokenRepository
from shepherd.stores.sql.violations import ViolationRepository
from shepherd.telemetry import Telemetry

SCHEDULER_ACTOR = "scheduler"


class Database:
    def __init__(
        self, engine: AsyncEngine, clock: Clock, instance_id: str,
        default_timeout_s: int = DEFAULT_EXECUTION_TIMEOUT_S,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.instance_id = instance_id
        self.telemetry = telemetry or Telemetry()  # what the repositories count
        self.fleet_events = FleetEventLog(engine, clock, self.telemetry)
        self.agents = AgentRepository(engine, clock, self.fleet_events)
        self.schedules = ScheduleRepository(engine, clock)
        self.executions = ExecutionRepository(engine, clock, default_timeout_s, self.telemetry)
        self.tokens = TokenRepository(engine)
        self.outbox = OutboxRepository(engine, clock)
        self.alerts = AlertStateRepository(engine)
        self.feed = TransitionFeedRepository(engine)
        self.summaries = SummaryRepository(engine)
        self.canary = CanaryFacts(engine)
        self.violations = ViolationRepository(engine)

    async def ping(self) -> None:
        async with translated("ping"), self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def fire_schedule(
        self, schedule: Schedule, firing: Firing, now_ms: int
    ) -> Execution | None:
        """Advance ``schedule`` past this tick and record its run; None if another won the tick."""
        async with translated("fire schedule"), self.engine.begin() as conn:
            won = await self.schedules.advance_in(
                conn, schedule.id, schedule.next_run_at_ms, firing.scheduled_for_ms,
                firing.next_run_at_ms,
            )
            if not won:
                return None
            return await self.executions.submit_in(
                conn, agent=schedule.agent, input=schedule.input, trigger=Trigger.SCHEDULE,
                created_by=SCHEDULER_ACTOR, schedule_id=schedule.id, timeout_s=None,
                retry_of=None, attempt=1,
            )

    async def close(self) -> None:
        await self.engine.dispose()


async def open_database(
    url: str, clock: Clock, default_timeout_s: int = DEFAULT_EXECUTION_TIMEOUT_S,
    telemetry: Telemetry | None = None,
) -> Database:
    engine = await create_sql_engine(url)
    try:
        await migrate(engine)
        instance_id = await ensure_instance_id(engine)
    except BaseException:
        await engine.dispose()
        raise
    return Database(engine, clock, instance_id, default_timeout_s, telemetry)
