"""The execution path end to end: queued -> running -> finalizing -> success|failed, through a
real runtime process running real children, on real SQL and a real redis-server."""

from __future__ import annotations

from shepherd.agent_client.protocol import RunState
from shepherd.app.runtimes import LocalRuntime
from shepherd.core.models import Agent, Execution, Trigger
from shepherd.core.status import ExecutionStatus as S
from tests.controllers.conftest import Controllers
from tests.fixtures.runtimes import StartRuntime

PY_ECHO = ["python3", "-c", "import sys; print('got', sys.stdin.read())"]


async def add_agent(c: Controllers, name: str, url: str | None, **fields: object) -> Agent:
    return await c.db.agents.create(name=name, url=url, command=None, **fields)


async def submit(c: Controllers, agent: str, text: str = "hello") -> Execution:
    return await c.db.executions.submit(
        agent=agent, input=text, trigger=Trigger.API, created_by="test"
    )


async def settle(
    c: Controllers, agent: Agent, runtime: LocalRuntime, *execution_ids: str
) -> None:
    """Wait for the children on the runtime, then let the monitor and finalizer see them."""
    client = c.directory.client_for(agent)
    assert client is not None
    for execution_id in execution_ids:
        await client.get(execution_id, wait_s=20)
    await c.monitor.sync_agent(agent, client)
    await c.finalizer.run_once()


async def slot_keys(c: Controllers) -> list[str]:
    keys = c.redis.keys
    found = [k async for k in c.redis.client.scan_iter(match=keys.all_pattern())]
    return sorted(k for k in found if k.startswith((keys.slots(""), keys.slot("", "")[:-1])))


async def test_a_queued_execution_runs_to_success_with_its_output(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("echo", PY_ECHO)
    agent = await add_agent(c, "echo", runtime.url)
    row = await submit(c, "echo", "ping")
    report = await c.dispatcher.run_once()
    assert report.dispatched == [row.id]
    running = await c.db.executions.get(row.id)
    assert running.status is S.RUNNING and running.pid and running.runtime_boot_id
    assert await c.redis.slots.count("echo") == 1
    await settle(c, agent, runtime, row.id)
    done = await c.db.executions.get(row.id)
    assert done.status is S.SUCCESS
    assert done.exit_code == 0
    assert "got ping" in (done.output_tail or "")
    assert done.completed_at_ms is not None
    assert await c.redis.slots.count("echo") == 0
    assert await slot_keys(c) == []
    statuses = [e.to_status for e in await c.db.executions.events(row.id)]
    assert statuses == [S.QUEUED, S.RUNNING, S.FINALIZING, S.SUCCESS]


async def test_a_non_zero_exit_fails_with_the_exit_code(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("bad", ["sh", "-c", "cat >/dev/null; echo oops >&2; exit 3"])
    agent = await add_agent(c, "bad", runtime.url)
    row = await submit(c, "bad")
    await c.dispatcher.run_once()
    await settle(c, agent, runtime, row.id)
    done = await c.db.executions.get(row.id)
    assert (done.status, done.exit_code, done.error_class) == (S.FAILED, 3, "exit_code")
    assert "oops" in (done.output_tail or "")


async def test_success_exit_codes_are_configurable_per_agent(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("three", ["sh", "-c", "cat >/dev/null; exit 3"])
    agent = await add_agent(c, "three", runtime.url, success_exit_codes=(0, 3))
    row = await submit(c, "three")
    await c.dispatcher.run_once()
    await settle(c, agent, runtime, row.id)
    assert (await c.db.executions.get(row.id)).status is S.SUCCESS


async def test_a_refused_dispatch_goes_back_to_the_backlog_and_frees_the_slot(
    controllers: Controllers, unused_tcp_port: int
) -> None:
    c = controllers
    await add_agent(c, "down", f"http://127.0.0.1:{unused_tcp_port}")
    row = await submit(c, "down")
    report = await c.dispatcher.run_once()
    assert report.refused == [row.id]
    again = await c.db.executions.get(row.id)
    assert again.status is S.QUEUED
    assert again.dispatched_at_ms is None and again.pid is None
    assert await c.redis.slots.count("down") == 0
    assert await slot_keys(c) == []


async def test_dispatch_claims_in_queue_order_and_never_exceeds_max_parallel(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("busy", ["sh", "-c", "cat >/dev/null; sleep 5"])
    await add_agent(c, "busy", runtime.url, max_parallel_tasks=2)
    rows = []
    for _ in range(5):
        rows.append(await submit(c, "busy"))
        c.clock.advance(0.001)  # distinct queued_at_ms: dispatch order is queue order
    first = await c.dispatcher.run_once()
    second = await c.dispatcher.run_once()
    # Decisions are FIFO; the starts themselves run side by side and may finish in any order.
    assert first.claimed == [rows[0].id, rows[1].id]
    assert sorted(first.dispatched) == sorted(first.claimed)
    assert (second.claimed, second.dispatched) == ([], [])
    assert await c.redis.slots.count("busy") == 2
    assert await c.db.executions.backlog_depth("busy") == 3
    client = c.directory.client_for(await c.db.agents.get("busy"))
    assert client is not None
    registry = await client.list_executions()
    running = sorted(e.execution_id for e in registry.executions if e.state is RunState.RUNNING)
    assert running == sorted(first.claimed)


async def test_a_child_that_ignores_its_input_ends_by_its_exit_code_with_the_input_unread(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("ignores", ["sh", "-c", "exit 3"])
    agent = await add_agent(c, "ignores", runtime.url, success_exit_codes=(0, 3))
    rows = [await submit(c, "ignores", text) for text in ("x", "", "x" * (1024 * 1024))]
    await c.dispatcher.run_once()
    await settle(c, agent, runtime, *(row.id for row in rows))
    done = [await c.db.executions.get(row.id) for row in rows]
    assert [(d.status, d.exit_code, d.error_class, d.input_unread) for d in done] == [
        (S.SUCCESS, 3, None, True), (S.SUCCESS, 3, None, False), (S.SUCCESS, 3, None, True)]


async def test_an_agent_that_requires_its_input_read_fails_a_child_that_left_it_unread(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("strict", ["sh", "-c", 'read -r line; [ "$line" = go ]'])
    agent = await add_agent(c, "strict", runtime.url, require_input_read=True)
    unread, read = await submit(c, "strict", "go\nmore\n"), await submit(c, "strict", "go\n")
    await c.dispatcher.run_once()
    await settle(c, agent, runtime, unread.id, read.id)
    failed, succeeded = await c.db.executions.get(unread.id), await c.db.executions.get(read.id)
    assert (failed.status, failed.exit_code, failed.error_class, failed.input_unread) == (
        S.FAILED, 0, "child_exited_early", True)
    assert (succeeded.status, succeeded.input_unread) == (S.SUCCESS, False)


async def test_the_runtime_times_out_a_child_and_the_run_fails(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("hang", ["sleep", "30"])
    agent = await add_agent(c, "hang", runtime.url, execution_timeout_s=1)
    row = await submit(c, "hang")
    assert row.timeout_s == 1
    await c.dispatcher.run_once()
    await settle(c, agent, runtime, row.id)
    done = await c.db.executions.get(row.id)
    assert (done.status, done.error_class) == (S.FAILED, "timed_out")


async def test_finalization_happens_exactly_once_when_two_finalizers_race(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    import asyncio

    c = controllers
    runtime = await start_runtime("race", PY_ECHO)
    agent = await add_agent(c, "race", runtime.url)
    row = await submit(c, "race")
    await c.dispatcher.run_once()
    client = c.directory.client_for(agent)
    assert client is not None
    await client.get(row.id, wait_s=20)
    await c.monitor.sync_agent(agent, client)
    other = type(c.finalizer)(c.db, c.redis, c.directory, c.clock, owner="other-plane")
    reports = await asyncio.gather(c.finalizer.run_once(), other.run_once())
    assert sum(len(r.finalized) for r in reports) == 1
    events = [e for e in await c.db.executions.events(row.id) if e.to_status is S.SUCCESS]
    assert len(events) == 1


async def test_work_queued_longer_than_a_day_fails_as_expired(controllers: Controllers) -> None:
    c = controllers
    await add_agent(c, "idle", None)
    old = await submit(c, "idle")
    c.clock.advance(86_400 - 1)
    fresh = await submit(c, "idle")
    c.clock.advance(2)
    report = await c.dispatcher.run_once()
    assert report.expired == [old.id]
    expired = await c.db.executions.get(old.id)
    assert (expired.status, expired.error_class) == (S.FAILED, "expired")
    assert (await c.db.executions.get(fresh.id)).status is S.QUEUED


async def test_a_cancelled_run_is_acked_once_its_child_is_gone_and_leaves_nothing_on_the_runtime(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    import psutil

    from shepherd.services.executions import cancel

    c = controllers
    runtime = await start_runtime("stoppable", ["sleep", "30"])
    agent = await add_agent(c, "stoppable", runtime.url)
    row = await submit(c, "stoppable")
    await c.dispatcher.run_once()
    pid = (await c.db.executions.get(row.id)).pid
    assert pid is not None and psutil.pid_exists(pid)
    cancelled = await cancel(c.db, c.redis, c.directory, row.id, "op", c.clock.now_ms())
    assert cancelled.status is S.CANCELLED
    assert not psutil.pid_exists(pid)
    client = c.directory.client_for(agent)
    assert client is not None
    assert [e.execution_id for e in (await client.list_executions()).executions] == []
    assert not (runtime.log_path.parent / "executions" / row.id).exists()
