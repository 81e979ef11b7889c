"""A control plane's controllers wired by hand on real stores, driven one ``run_once`` at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from shepherd.agent_client.breaker import BreakerHook
from shepherd.agent_client.pool import AgentClientPool
from shepherd.controllers.base import Wakeup
from shepherd.controllers.claimed import ClaimedRows
from shepherd.controllers.delivery import ConfiguredDestinations
from shepherd.controllers.directory import PooledDirectory
from shepherd.controllers.dispatcher import Dispatcher
from shepherd.controllers.finalizer import Finalizer
from shepherd.controllers.maintenance import Maintenance
from shepherd.controllers.monitor import Monitor
from shepherd.controllers.outbox import OutboxConfig, OutboxSender
from shepherd.controllers.results import ResultWriter
from shepherd.controllers.scheduler import Scheduler
from shepherd.core.clock import ManualClock
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database
from tests.fixtures.runtimes import AGENT_TOKEN


@dataclass
class Controllers:
    db: Database
    redis: RedisHandle
    clock: ManualClock
    pool: AgentClientPool
    directory: PooledDirectory
    scheduler: Scheduler
    dispatcher: Dispatcher
    monitor: Monitor
    finalizer: Finalizer
    maintenance: Maintenance
    outbox: OutboxSender
    claimed: ClaimedRows  # the dispatcher's claims the monitor plans results from


def build_controllers(
    db: Database, redis: RedisHandle, clock: ManualClock, pool: AgentClientPool, owner: str,
    breaker: BreakerHook | None = None,
) -> Controllers:
    directory = PooledDirectory(pool, AGENT_TOKEN)
    wakeup, outbox_wakeup = Wakeup(), Wakeup()
    claimed = ClaimedRows()  # shared, as in the control plane
    return Controllers(
        db=db, redis=redis, clock=clock, pool=pool, directory=directory,
        scheduler=Scheduler(db, clock),
        dispatcher=Dispatcher(db, redis, directory, clock, max_queue_age_s=86_400,
                              breaker=breaker, claimed=claimed),
        monitor=Monitor(db, redis, directory, clock, owner=owner, finalizer_wakeup=wakeup,
                        poll_wait_s=0.5, breaker=breaker, claimed=claimed,
                        results=ResultWriter(db, redis, clock, outbox_wakeup=outbox_wakeup)),
        finalizer=Finalizer(db, redis, directory, clock, owner=owner,
                            outbox_wakeup=outbox_wakeup),
        maintenance=Maintenance(db, redis, clock, reclaim_grace_s=3),
        claimed=claimed,
        outbox=OutboxSender(db, clock, ConfiguredDestinations(db, {}), owner=owner,
                            config=OutboxConfig(send_timeout_s=2.0), wakeup=outbox_wakeup,
                            draw=lambda: 0.0),
    )


@pytest.fixture
async def controllers(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> AsyncIterator[Controllers]:
    pool = AgentClientPool()
    built = build_controllers(db, redis_handle, clock, pool, owner="test-plane")
    yield built
    await built.monitor.stop()
    await built.outbox.stop()
    await pool.aclose()
