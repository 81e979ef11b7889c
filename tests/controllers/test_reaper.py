"""The reaper end to end on real runtimes, real children, real SQL and a real redis-server, with
the clock moved by hand: tier 2 defers to a live finalizer and takes over a silent one exactly
once, a result that is gone ends failed, tier 3 ignores leases, tier 1 watches unwatched agents,
a fault in one row's lease lookup leaves the others alone, and the kill switch shows what the
liveness check prevents."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client import generate_latest

from shepherd.agent_client.protocol import RunState
from shepherd.app.runtimes import LocalRuntime, LocalRuntimes
from shepherd.controllers.finalizer import FinalizeReport
from shepherd.controllers.reaper import Reaper, ReaperConfig
from shepherd.core.finalization import Completion
from shepherd.core.ids import AgentName
from shepherd.core.models import Execution, Trigger
from shepherd.core.reaper import ReaperPolicy
from shepherd.core.status import TERMINAL, Cause
from shepherd.core.status import ExecutionStatus as S
from shepherd.manifest.schema import AgentSpec
from shepherd.telemetry import Telemetry
from tests.controllers.conftest import Controllers
from tests.fixtures.receiver import Answer, receiving
from tests.fixtures.runtimes import StartRuntime
from tests.fixtures.servers import dropping_proxy

GRACE_S = 300
QUICK = ["sh", "-c", "cat >/dev/null; echo fine"]
SLEEPER = ["sh", "-c", "cat >/dev/null; sleep 30"]
RESULT = "/v1/executions/"  # the path of one run's result (the registry has no trailing slash)


def reaper(c: Controllers, *, liveness: bool = True, max_running_s: float | None = None,
           telemetry: Telemetry | None = None) -> Reaper:
    policy = ReaperPolicy(finalize_grace_ms=GRACE_S * 1000, finalizer_liveness=liveness,
                          max_running_ms=None if max_running_s is None
                          else round(max_running_s * 1000))
    return Reaper(c.db, c.redis, c.directory, c.clock, finisher=c.finalizer, watcher=c.monitor,
                  owner="test-plane", config=ReaperConfig(policy=policy), telemetry=telemetry)


async def submitted(c: Controllers, name: str, url: str, **fields: object) -> Execution:
    """A row dispatched to a real runtime, the manual clock set to the host's first."""
    c.clock.set(time.time_ns() // 1_000_000)  # the runtime stamps exits with the host's clock
    await c.db.agents.create(name=AgentName(name), url=url, command=None, **fields)
    row = await c.db.executions.submit(agent=AgentName(name), input="", trigger=Trigger.API,
                                       created_by="t")
    assert row.id in (await c.dispatcher.run_once()).dispatched
    return row


async def exited(c: Controllers, name: str, url: str, **fields: object) -> Execution:
    """A row whose child exited and that a registry pass moved to ``finalizing``; nobody has
    finalized it. The clock stands at the child's exit."""
    row = await submitted(c, name, url, **fields)
    agent = await c.db.agents.get(name)
    client = c.directory.client_for(agent)
    assert client is not None
    await client.get(row.id, wait_s=10)
    assert (await c.monitor.sync_agent(agent, client)).settled == [row.id]
    found = await c.db.executions.get(row.id)
    assert found.status is S.FINALIZING and found.finished_at_ms is not None
    c.clock.set(max(c.clock.now_ms(), found.finished_at_ms))
    return found


async def terminal_events(c: Controllers, execution_id: str) -> list[tuple[object, ...]]:
    return [(e.from_status, e.to_status, e.cause, e.actor)
            for e in await c.db.executions.events(execution_id) if e.to_status in TERMINAL]


async def wait_for(probe: Callable[[], bool | Awaitable[bool]], what: str,
                   limit_s: float = 10) -> None:
    for _ in range(int(limit_s / 0.02)):
        found = probe()
        if found if isinstance(found, bool) else await found:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def counted(telemetry: Telemetry, line: str) -> bool:
    return line in generate_latest(telemetry.registry).decode()


# -- tier 2 ------------------------------------------------------------------------------------


async def test_a_silent_finalizers_row_is_finalized_once_by_the_reaper_after_its_grace(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("quick", QUICK)
    row = await exited(c, "quick", runtime.url)
    telemetry = Telemetry()
    r = reaper(c, telemetry=telemetry)
    c.clock.advance(GRACE_S - 0.001)
    assert (await r.run_once()).finalized == []
    c.clock.advance(0.001)
    report = await r.run_once()
    assert (report.finalized, report.deferred) == ([row.id], [])
    done = await c.db.executions.get(row.id)
    assert (done.status, done.output_tail) == (S.SUCCESS, "fine\n")
    [event] = await terminal_events(c, row.id)
    assert event == (S.FINALIZING, S.SUCCESS, Cause.FINALIZED, "reaper")
    reason = (await c.db.executions.events(row.id))[-1].reason
    assert reason == ("tier 2: finished 300 s ago and no finalizer holds it: finalized on its "
                      "finalizer's behalf")
    client = c.directory.client_for(await c.db.agents.get("quick"))
    assert client is not None and (await client.list_executions()).executions == []  # acked
    again = await r.run_once()
    assert (again.finalized, again.lost_race) == ([], [])  # a second pass acts on nothing
    assert await c.redis.leases.held(c.redis.keys.finalize_lease_pattern()) == []
    assert counted(telemetry, 'shepherd_reaper_actions_total{action="finalized",tier="2"} 1.0')


@pytest.mark.parametrize("sql_url", ["sqlite"], indirect=True)
async def test_a_slow_finalizer_that_lives_is_deferred_every_tick_and_its_row_ends_once(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    """The live owner's completion step (reading the result from a runtime that answers
    slowly) outlasts the grace, and so does the completion webhook's receiver: the reaper
    defers on every tick, the execution ends once, and the receiver sees one delivery per
    idempotency key."""
    c = controllers
    runtime = await start_runtime("slow", QUICK)
    upstream = int(runtime.url.rsplit(":", 1)[1])
    with receiving() as receiver:
        receiver.default = Answer(hang=True)
        async with dropping_proxy(upstream) as proxy:
            row = await exited(c, "slow", proxy.url, completion_webhook_url=receiver.url)
            proxy.hold("GET", RESULT)
            owner_report = FinalizeReport()
            owner = asyncio.create_task(c.finalizer.finalize(row, owner_report))
            await wait_for(lambda: proxy.held == 1, "the owner's result read to be held")
            telemetry = Telemetry()
            r = reaper(c, telemetry=telemetry)
            for _ in range(3):
                c.clock.advance(GRACE_S)
                report = await r.run_once()
                assert (report.deferred, report.finalized) == ([row.id], [])
            proxy.release()
            await owner
            assert owner_report.finalized == [row.id]
            delivering = asyncio.create_task(c.outbox.run_once())
            await wait_for(lambda: receiver.hanging() == 1, "the webhook to hang")
            c.clock.advance(GRACE_S)
            quiet = await r.run_once()  # the row is terminal: nothing is the reaper's
            assert (quiet.deferred, quiet.finalized) == ([], [])
            receiver.release()
            await delivering
            await c.outbox.drain()
    assert await terminal_events(c, row.id) == [
        (S.FINALIZING, S.SUCCESS, Cause.FINALIZED, "finalizer")]
    assert receiver.keys() == [f"{row.id}:1"]
    assert counted(telemetry, "shepherd_reaper_defers_total 3.0")
    detail = await c.redis.reports.detail("reaper")
    assert detail is not None and detail["deferred"] == []


async def test_a_result_the_restarted_runtime_no_longer_has_ends_failed_saying_so(
    controllers: Controllers, start_runtime: StartRuntime, runtimes: LocalRuntimes
) -> None:
    c = controllers
    runtime = await start_runtime("amnesiac", QUICK)
    row = await exited(c, "amnesiac", runtime.url)
    await restart_without_state(c, runtimes, runtime)
    c.clock.advance(GRACE_S)
    report = await reaper(c).run_once()
    assert report.result_lost == [row.id]
    done = await c.db.executions.get(row.id)
    assert (done.status, done.error_class) == (S.FAILED, "result_lost")
    assert done.error == ("tier 2: the result can no longer be fetched: the runtime of amnesiac "
                          "has no record of it (it restarted without its state, or let it go)")
    assert await terminal_events(c, row.id) == [
        (S.FINALIZING, S.FAILED, Cause.RESULT_LOST, "reaper")]
    assert [r for r in await c.db.executions.list() if r.retry_of] == []  # never retried


async def restart_without_state(c: Controllers, runtimes: LocalRuntimes,
                                runtime: LocalRuntime) -> None:
    """SIGKILL the runtime, delete everything it kept, start it again (a replaced host)."""
    assert runtime.process is not None
    runtime.process.send_signal(signal.SIGKILL)
    await runtime.process.wait()
    shutil.rmtree(runtimes.agent_dir(runtime.spec.name))
    again = await runtimes.start(AgentSpec(name=runtime.spec.name, command=tuple(QUICK)))
    await c.db.agents.update(runtime.spec.name, url=again.url)


@pytest.mark.parametrize("sql_url", ["sqlite"], indirect=True)
async def test_a_finalizing_row_of_a_lost_agent_ends_failed_and_its_webhook_says_so(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("far", QUICK)
    with receiving() as receiver:
        row = await exited(c, "far", runtime.url, completion_webhook_url=receiver.url)
        await c.redis.health.fence("far", c.clock.now_ms())
        c.clock.advance(GRACE_S)
        assert (await reaper(c).run_once()).result_lost == [row.id]
        await c.outbox.run_once()
        await c.outbox.drain()
    done = await c.db.executions.get(row.id)
    assert (done.status, done.error_class) == (S.FAILED, "result_lost")
    assert done.error is not None
    assert done.error.endswith("the result can no longer be fetched: agent far was declared lost")
    [seen] = receiver.requests
    assert (seen.body["status"], seen.body["error_class"]) == ("failed", "result_lost")


@pytest.mark.parametrize("sql_url", ["sqlite"], indirect=True)
async def test_a_fault_in_one_rows_lease_lookup_does_not_stop_the_pass(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("two", QUICK)
    await c.db.agents.create(name=AgentName("two"), url=runtime.url, command=None,
                             max_parallel_tasks=2)
    c.clock.set(time.time_ns() // 1_000_000)
    rows = [await c.db.executions.submit(agent=AgentName("two"), input="",
                                         trigger=Trigger.API, created_by="t") for _ in range(2)]
    await c.dispatcher.run_once()
    agent = await c.db.agents.get("two")
    client = c.directory.client_for(agent)
    assert client is not None
    for row in rows:
        await client.get(row.id, wait_s=10)
    await c.monitor.sync_agent(agent, client)
    bad, good = rows
    # A real fault in the store: the bad row's lease key holds a hash, so reading it fails.
    await c.redis.client.hset(c.redis.keys.finalize_lease(bad.id), "not", "a lease")
    telemetry = Telemetry()
    # Past the grace from the exits, which the runtime stamped with the host's clock.
    c.clock.set(time.time_ns() // 1_000_000)
    c.clock.advance(GRACE_S + 1)
    report = await reaper(c, telemetry=telemetry).run_once()
    assert report.finalized == [good.id]
    [fault] = report.faults
    assert fault.startswith(f"{bad.id}: LeaseUnknown: finalize lease of {bad.id} unreadable")
    assert (await c.db.executions.get(bad.id)).status is S.FINALIZING  # judged again next pass
    assert counted(telemetry, "shepherd_reaper_row_faults_total 1.0")


# -- the kill switch -------------------------------------------------------------------------


@pytest.mark.parametrize("sql_url", ["sqlite"], indirect=True)
async def test_with_the_liveness_check_off_the_reaper_reruns_a_finalization_its_owner_runs(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    """UNSAFE by design: SHEPHERD_REAPER_FINALIZER_LIVENESS=0 is the reaper of the platform the
    seed describes, judging a finalizer dead by the age of its finalization alone. Its live
    owner is still reading the result when the reaper finalizes the same row a second time:
    two finalizations run at once. Here the status CAS lets only one of them end the row; any
    completion step outside that CAS (the second result read here; an edge gate, elsewhere)
    runs twice."""
    c = controllers
    runtime = await start_runtime("unsafe", QUICK)
    upstream = int(runtime.url.rsplit(":", 1)[1])
    async with dropping_proxy(upstream) as proxy:
        row = await exited(c, "unsafe", proxy.url)
        proxy.hold("GET", RESULT, times=1)  # the owner's read is slow; the next one is not
        owner_report = FinalizeReport()
        owner = asyncio.create_task(c.finalizer.finalize(row, owner_report))
        await wait_for(lambda: proxy.held == 1, "the owner's result read to be held")
        owner_token = await c.redis.leases.owner(c.redis.keys.finalize_lease(row.id))
        assert owner_token == "test-plane"  # the owner is alive and holds its lease
        c.clock.advance(GRACE_S)
        report = await reaper(c, liveness=False).run_once()
        assert (report.finalized, report.deferred) == ([row.id], [])  # the second finalization
        proxy.release()
        await owner
        reads = proxy.requests[f"{RESULT}{row.id}"]
    assert owner_report.lost == [row.id]  # the owner finalized too, and lost the CAS
    assert reads >= 3  # the wait before settling, then the owner's read and the reaper's
    assert await terminal_events(c, row.id) == [
        (S.FINALIZING, S.SUCCESS, Cause.FINALIZED, "reaper")]


@pytest.mark.parametrize("sql_url", ["sqlite"], indirect=True)
async def test_with_the_liveness_check_on_the_same_race_is_deferred(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("safe", QUICK)
    upstream = int(runtime.url.rsplit(":", 1)[1])
    async with dropping_proxy(upstream) as proxy:
        row = await exited(c, "safe", proxy.url)
        proxy.hold("GET", RESULT, times=1)
        owner_report = FinalizeReport()
        owner = asyncio.create_task(c.finalizer.finalize(row, owner_report))
        await wait_for(lambda: proxy.held == 1, "the owner's result read to be held")
        c.clock.advance(GRACE_S)
        report = await reaper(c).run_once()
        assert (report.finalized, report.deferred) == ([], [row.id])
        proxy.release()
        await owner
    assert owner_report.finalized == [row.id]
    assert await terminal_events(c, row.id) == [
        (S.FINALIZING, S.SUCCESS, Cause.FINALIZED, "finalizer")]


# -- tier 3 ------------------------------------------------------------------------------------


async def test_the_backstop_ends_a_finalization_whose_live_lease_outlives_max_running_s(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("stuck", QUICK)
    row = await exited(c, "stuck", runtime.url)
    key = c.redis.keys.finalize_lease(row.id)
    assert await c.redis.leases.acquire(key, "stuck-plane", 3_600_000)  # alive, forever busy
    r = reaper(c)
    c.clock.set(row.dispatched_at_ms + (row.timeout_s + 2 * GRACE_S) * 1000 - 1)
    assert (await r.run_once()).deferred == [row.id]
    c.clock.advance(0.001)
    report = await r.run_once()
    assert (report.backstopped, report.deferred) == ([row.id], [])
    done = await c.db.executions.get(row.id)
    assert (done.status, done.error_class) == (S.FAILED, "backstop")
    assert await terminal_events(c, row.id) == [(S.FINALIZING, S.FAILED, Cause.BACKSTOP, "reaper")]
    assert done.error == (
        "tier 3 backstop: finalizing 1500 s after dispatch, past max_running_s (1500 s: timeout "
        "900 s + 2 x finalize grace 300 s); its finalize lease (stuck-plane) ignored")
    # The stuck owner finishes at last: its CAS finds the row ended and it writes nothing.
    assert await c.finalizer.complete(row) is Completion.LOST
    assert await c.redis.leases.owner(key) == "stuck-plane"  # never the reaper's to release


async def test_the_backstop_fails_a_running_row_frees_its_slot_and_stops_its_child(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("hung", SLEEPER)
    row = await submitted(c, "hung", runtime.url)
    await wait_for(lambda: _registry_is(c, "hung", row.id, RunState.RUNNING), "the child to run")
    assert await c.redis.slots.count("hung") == 1
    c.clock.advance(1000)
    r = reaper(c, max_running_s=1000)
    report = await r.run_once()
    assert (report.backstopped, report.terminated) == ([row.id], [row.id])
    assert (await c.db.executions.get(row.id)).status is S.FAILED
    assert await c.redis.slots.count("hung") == 0
    assert await _registry_is(c, "hung", row.id, RunState.FINISHED)
    reason = (await c.db.executions.events(row.id))[-1].reason
    assert reason == "tier 3 backstop: running 1000 s after dispatch, past max_running_s (1000 s)"
    assert (await r.run_once()).backstopped == []


async def _registry_is(c: Controllers, name: str, execution_id: str, state: RunState) -> bool:
    client = c.directory.client_for(await c.db.agents.get(name))
    assert client is not None
    found = {e.execution_id: e.state for e in (await client.list_executions()).executions}
    return found.get(execution_id) is state


# -- tier 1 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sql_url", ["sqlite"], indirect=True)
async def test_running_rows_no_monitor_watches_are_watched_at_once_even_on_a_disabled_agent(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("alone", ["sh", "-c", "cat >/dev/null; sleep 1; echo done"])
    row = await submitted(c, "alone", runtime.url)
    await c.db.agents.update("alone", enabled=False)  # the monitor watches enabled agents only
    assert (await c.monitor.run_once()).watching == []
    r = reaper(c)
    report = await r.run_once()
    assert report.attached == ["alone"]
    [attached] = [e for e in await c.db.fleet_events.read(0, 100)
                  if e.type == "recovery.action"]
    assert (attached.agent, attached.data["action"], attached.data["actor"]) == (
        "alone", "attached", "reaper")
    lease = c.redis.keys.monitor_lease("alone")
    await wait_for(lambda: _has_owner(c, lease), "the watcher to take the monitor lease")
    assert (await r.run_once()).attached == []  # watched now
    assert (await c.monitor.run_once()).watching == ["alone"]  # kept while it has running rows
    # The exit event carries the result: the watcher settles and finalizes it at once.
    await wait_for(lambda: _status_is(c, row.id, S.SUCCESS), "the watcher to store the result")
    assert (await c.monitor.run_once()).stopped == ["alone"]  # nothing left to watch


async def _has_owner(c: Controllers, key: str) -> bool:
    return await c.redis.leases.owner(key) is not None


async def _status_is(c: Controllers, execution_id: str, status: S) -> bool:
    return (await c.db.executions.get(execution_id)).status is status
