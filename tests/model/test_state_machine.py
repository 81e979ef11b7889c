"""A stateful property test: random submits, dispatches, transitions and releases against real SQL
(SQLite) and a real redis-server, checked step by step against a model.

Properties: a CAS wins exactly when the transition table allows it, and a loser changes neither
the row nor its events; a terminal status never changes; an agent never holds more slots than
``max_parallel``; a slot is released only by the caller that won the CAS out of ``running``.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule
from redis.asyncio import Redis

from shepherd.core.clock import ManualClock
from shepherd.core.ids import AgentName
from shepherd.core.models import Trigger
from shepherd.core.status import Cause, ExecutionStatus, is_allowed
from shepherd.stores.redis.connection import handle_for
from shepherd.stores.redis.slots import AcquireResult
from shepherd.stores.sql.database import open_database
from tests.stores.redis.helpers import take_slot

S = ExecutionStatus
MAX_PARALLEL = 2
AGENT = AgentName("m")
_prefixes = itertools.count()


class ExecutionModel(RuleBasedStateMachine):
    executions = Bundle("executions")
    socket: Path  # the session redis-server, set by the test

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        self.clock = ManualClock()
        self.db = self.run(open_database(f"sqlite+aiosqlite:///{self.tmp.name}/m.db",
                                         self.clock))
        client = Redis(unix_socket_path=str(self.socket), decode_responses=True)
        self.redis = handle_for(client, f"model{next(_prefixes)}:")
        self.run(self.db.agents.create(name=AGENT, url=None, command=("true",),
                                       max_parallel_tasks=MAX_PARALLEL,
                                       max_backlog_depth=10_000))
        self.status: dict[str, ExecutionStatus] = {}
        self.events: dict[str, int] = {}
        self.slots: set[str] = set()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.redis.close())
        self.run(self.db.close())
        self.loop.close()
        self.tmp.cleanup()

    @rule(target=executions)
    def submit(self) -> str:
        row = self.run(self.db.executions.submit(agent=AGENT, input="x",
                                                 trigger=Trigger.API, created_by="model"))
        self.status[row.id], self.events[row.id] = S.QUEUED, 1
        return str(row.id)

    @rule(eid=executions)
    def dispatch(self, eid: str) -> None:
        result = self.run(take_slot(
            self.redis, AGENT, eid, max_parallel=MAX_PARALLEL, timeout_s=60,
            now_ms=self.clock.now_ms(), holder="model"))
        if result is AcquireResult.FULL:
            assert len(self.slots) >= MAX_PARALLEL
            return
        won = self.run(self.db.executions.claim_queued(eid, self.clock.now_ms(), "model"))
        assert won == (self.status[eid] is S.QUEUED)
        if won:
            self.status[eid] = S.RUNNING
            self.events[eid] += 1
            self.slots.add(eid)
        elif result is AcquireResult.ACQUIRED:
            assert self.run(self.redis.slots.release(AGENT, eid))

    @rule(eid=executions, to=st.sampled_from(ExecutionStatus), cause=st.sampled_from(Cause))
    def transition(self, eid: str, to: ExecutionStatus, cause: Cause) -> None:
        before = self.run(self.db.executions.get(eid))
        expected = is_allowed(self.status[eid], to, cause)
        won = self.run(self.db.executions.transition(eid, to, cause, actor="model",
                                                     now_ms=self.clock.now_ms()))
        assert won == expected
        if not won:
            assert self.run(self.db.executions.get(eid)) == before
            return
        left_running = self.status[eid] is S.RUNNING
        self.status[eid] = to
        self.events[eid] += 1
        if left_running and eid in self.slots:
            assert self.run(self.redis.slots.release(AGENT, eid))
            self.slots.discard(eid)

    @rule(eid=executions)
    def stray_release(self, eid: str) -> None:
        if eid in self.slots:
            return
        assert not self.run(self.redis.slots.release(AGENT, eid))

    @invariant()
    def stores_match_the_model(self) -> None:
        for eid, status in self.status.items():
            row = self.run(self.db.executions.get(eid))
            assert row.status is status
            assert len(self.run(self.db.executions.events(eid))) == self.events[eid]
        holders = self.run(self.redis.slots.holders(AGENT))
        assert set(holders) == self.slots
        assert len(holders) <= MAX_PARALLEL



@pytest.mark.slow
def test_random_operations_keep_every_invariant(redis_socket: Path) -> None:
    ExecutionModel.socket = redis_socket
    machine = ExecutionModel
    machine.TestCase.settings = settings(
        max_examples=20, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    machine.TestCase().runTest()
