"""Rows the API tests start from, made through the services (not through the API under test)."""

from __future__ import annotations

from dataclasses import dataclass

from shepherd.core.ids import AgentName, ExecutionId
from shepherd.core.models import Execution, Schedule, Trigger
from shepherd.services.executions import cancel, submit
from shepherd.services.schedules import ScheduleFields, create_schedule
from shepherd.services.tokens import Role, create_token
from tests.api.conftest import Api
from tests.stores.redis.helpers import take_slot


@dataclass(frozen=True)
class Refs:
    schedule: str
    execution: str  # queued on alpha
    cancelled: str  # cancelled on alpha, so retryable
    beta_execution: str
    beta_schedule: str
    token: str  # a throwaway token's id

    def fill(self, path: str) -> str:
        return path.format(**self.__dict__)


async def schedule_on(api: Api, agent: str, cron: str = "*/5 * * * *") -> Schedule:
    fields = ScheduleFields(agent=AgentName(agent), cron=cron, input="from cron")
    return await create_schedule(api.db, fields, api.clock.now_ms())


async def submit_on(api: Api, agent: str, text: str = "hello") -> Execution:
    return await submit(api.db, agent=agent, input=text, trigger=Trigger.API, created_by="test")


async def make_refs(api: Api) -> Refs:
    schedule = await schedule_on(api, "alpha")
    beta_schedule = await schedule_on(api, "beta")
    queued = await submit_on(api, "alpha")
    to_cancel = await submit_on(api, "alpha")
    await cancel(api.db, api.redis, api.directory, to_cancel.id, "test", api.clock.now_ms())
    beta = await submit_on(api, "beta")
    token = await create_token(api.db, name="throwaway", role=Role.VIEWER, agent=None,
                               now_ms=api.clock.now_ms())
    return Refs(schedule.id, queued.id, to_cancel.id, beta.id, beta_schedule.id, token.token.id)


async def start_running(api: Api, execution_id: str) -> None:
    """What the dispatcher does: take a slot, then claim the row."""
    row = await api.db.executions.get(ExecutionId(execution_id))
    await take_slot(api.redis, row.agent, row.id, max_parallel=10, timeout_s=row.timeout_s,
                    now_ms=api.clock.now_ms(), holder="test")
    assert await api.db.executions.claim_queued(row.id, api.clock.now_ms(), "test")
