"""What the dispatcher and the status writes count for ``/metrics``: queue wait, dispatch latency,
hand-off outcomes and transitions by cause, observed on a real runtime, real SQL and Redis."""

from __future__ import annotations

from shepherd.controllers.dispatcher import Dispatcher
from shepherd.stores.sql.database import Database
from shepherd.telemetry import Telemetry
from tests.controllers.conftest import Controllers
from tests.controllers.test_execution_path import PY_ECHO, add_agent, settle, submit
from tests.fixtures.runtimes import StartRuntime


def sample(telemetry: Telemetry, name: str, **labels: str) -> float:
    value = telemetry.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_a_dispatch_records_its_queue_wait_latency_and_outcome(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    telemetry = Telemetry()
    dispatcher = Dispatcher(c.db, c.redis, c.directory, c.clock, max_queue_age_s=86_400,
                            telemetry=telemetry)
    runtime = await start_runtime("echo", PY_ECHO)
    await add_agent(c, "echo", runtime.url)
    await submit(c, "echo")
    c.clock.advance(2.0)
    assert (await dispatcher.run_once()).dispatched
    assert sample(telemetry, "shepherd_queue_wait_seconds_count", agent="echo") == 1
    assert sample(telemetry, "shepherd_queue_wait_seconds_sum", agent="echo") == 2.0
    assert sample(telemetry, "shepherd_dispatch_latency_seconds_count", agent="echo") == 1
    assert sample(telemetry, "shepherd_dispatch_outcomes_total", agent="echo",
                  outcome="started") == 1


async def test_a_refused_dispatch_is_counted_as_refused(controllers: Controllers) -> None:
    c = controllers
    telemetry = Telemetry()
    dispatcher = Dispatcher(c.db, c.redis, c.directory, c.clock, max_queue_age_s=86_400,
                            telemetry=telemetry)
    await add_agent(c, "gone", "http://127.0.0.1:9")  # nothing listens on the discard port
    await submit(c, "gone")
    report = await dispatcher.run_once()
    assert report.refused
    assert sample(telemetry, "shepherd_dispatch_outcomes_total", agent="gone",
                  outcome="refused") == 1
    assert sample(telemetry, "shepherd_dispatch_outcomes_total", agent="gone",
                  outcome="started") == 0


async def test_every_status_write_won_is_counted_by_target_and_cause(
    controllers: Controllers, start_runtime: StartRuntime, db: Database
) -> None:
    c = controllers
    runtime = await start_runtime("echo", PY_ECHO)
    agent = await add_agent(c, "echo", runtime.url)
    row = await submit(c, "echo")
    await c.dispatcher.run_once()
    await settle(c, agent, runtime, row.id)
    telemetry = db.telemetry
    for to, cause in (("running", "dispatch"), ("finalizing", "child_exited"),
                      ("success", "finalized")):
        assert sample(telemetry, "shepherd_transitions_total", to=to, cause=cause) == 1, to
