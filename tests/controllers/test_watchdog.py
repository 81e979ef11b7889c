"""The watchdog end to end on real runtimes, real children, real SQL and a real redis-server, with
the clock moved by hand: every action of the decision table, the fence, the triggers, the
race with a normal completion, isolated faults, and a second cycle that acts on nothing."""

from __future__ import annotations

import asyncio

import psutil
import pytest
from prometheus_client import generate_latest
from sqlalchemy import update

from shepherd.agent_client.client import AgentClient
from shepherd.agent_client.protocol import RunState
from shepherd.app.runtimes import LocalRuntime
from shepherd.controllers.base import Wakeup
from shepherd.controllers.watchdog import Watchdog, WatchdogConfig
from shepherd.core.ids import AgentName
from shepherd.core.models import Agent, Execution, Trigger
from shepherd.core.retry import BackoffPolicy
from shepherd.core.status import Cause
from shepherd.core.status import ExecutionStatus as S
from shepherd.core.watchdog import (
    AgentFacts,
    RowDecision,
    RowFacts,
    WatchdogPolicy,
    decide_watchdog,
    judge_row,
)
from shepherd.stores.sql.tables import executions
from shepherd.telemetry import Telemetry
from tests.controllers.conftest import Controllers
from tests.fixtures.runtimes import StartRuntime
from tests.stores.redis.helpers import take_slot

POLICY = WatchdogPolicy(agent_lost_after_ms=60_000, dispatch_grace_ms=10_000,
                        timeout_slack_ms=30_000, backoff=BackoffPolicy(2.0, 300.0, 0.0),
                        handover_grace_ms=5_000)
SLEEPER = ["sh", "-c", "cat >/dev/null; sleep 30"]


def watchdog(c: Controllers, **kw: object) -> Watchdog:
    return Watchdog(c.db, c.redis, c.directory, c.clock,
                    config=WatchdogConfig(15.0, 2.0, POLICY), **kw)  # type: ignore[arg-type]


async def agent(c: Controllers, name: str, url: str | None, **fields: object) -> Agent:
    return await c.db.agents.create(name=AgentName(name), url=url, command=None, **fields)


async def dispatched(c: Controllers, name: str) -> Execution:
    """A row the dispatcher claimed and handed to the agent's runtime."""
    row = await c.db.executions.submit(agent=AgentName(name), input="", trigger=Trigger.API,
                                       created_by="t")
    report = await c.dispatcher.run_once()
    assert row.id in report.dispatched, report
    return await c.db.executions.get(row.id)


async def cancelled_while_running(
    c: Controllers, start_runtime: StartRuntime, name: str
) -> Execution:
    """A row whose child runs on a fresh runtime, cancelled in SQL without the runtime being
    told (the cancel's terminate was lost)."""
    runtime = await start_runtime(name, SLEEPER)
    await agent(c, name, runtime.url)
    row = await dispatched(c, name)
    assert await c.db.executions.transition(row.id, S.CANCELLED, Cause.CANCEL, actor="op",
                                            now_ms=c.clock.now_ms())
    return row


async def claimed(c: Controllers, name: str) -> Execution:
    """A running row holding its slot that no runtime ever heard of (its start was lost)."""
    row = await c.db.executions.submit(agent=AgentName(name), input="", trigger=Trigger.API,
                                       created_by="t")
    await take_slot(c.redis, name, row.id, max_parallel=10, timeout_s=row.timeout_s,
                    now_ms=c.clock.now_ms(), holder="t")
    assert await c.db.executions.claim_queued(row.id, c.clock.now_ms(), "t")
    return row


async def hung(c: Controllers, name: str, url: str) -> Execution:
    """A run started on a real runtime with an hour's timeout whose SQL row says 1 s."""
    await agent(c, name, url, execution_timeout_s=3600)
    row = await dispatched(c, name)
    await set_timeout(c, row.id, 1)
    return row


async def set_timeout(c: Controllers, execution_id: str, timeout_s: int) -> None:
    """Make SQL's timeout shorter than the one the runtime was given: a runtime that does not
    enforce the timeout, as far as the control plane can tell."""
    async with c.db.engine.begin() as conn:
        await conn.execute(update(executions).where(executions.c.id == execution_id)
                           .values(timeout_s=timeout_s))


async def registry_state(c: Controllers, name: str, execution_id: str) -> RunState | None:
    client = c.directory.client_for(await c.db.agents.get(name))
    assert client is not None
    found = {e.execution_id: e.state for e in (await client.list_executions()).executions}
    return found.get(execution_id)


def kill_with_children(runtime: LocalRuntime) -> None:
    parent = psutil.Process(runtime.process.pid)
    for proc in [*parent.children(recursive=True), parent]:
        proc.kill()
    psutil.wait_procs([parent], timeout=5)


async def last_event(c: Controllers, execution_id: str) -> tuple[object, ...]:
    event = (await c.db.executions.events(execution_id))[-1]
    return (event.from_status, event.to_status, event.cause, event.actor)


# -- the table -----------------------------------------------------------------------------------


async def test_a_child_its_runtime_does_not_stop_is_terminated_then_failed_and_its_slot_freed(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("hang", SLEEPER)
    row = await hung(c, "hang", runtime.url)
    wd = watchdog(c)
    c.clock.advance(31)  # 1 s timeout + 30 s slack: not yet
    assert (await wd.run_cycle()).ok == [row.id]
    c.clock.advance(1)
    report = await wd.run_cycle()
    assert report.timed_out == [row.id]
    done = await c.db.executions.get(row.id)
    assert (done.status, done.error_class) == (S.FAILED, "timed_out")
    assert done.error is not None and done.error.startswith("timed out after 32 s")
    assert await last_event(c, row.id) == (S.RUNNING, S.FAILED, Cause.TIMED_OUT, "watchdog")
    assert await c.redis.slots.count("hang") == 0
    assert await registry_state(c, "hang", row.id) is RunState.FINISHED  # the child is gone


async def test_a_terminate_that_fails_leaves_the_row_running_with_its_slot(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("gone", SLEEPER)
    row = await hung(c, "gone", runtime.url)
    c.clock.advance(60)
    wd = watchdog(c)
    snapshot, _ = await wd.collect()
    kill_with_children(runtime)  # the runtime dies between the look and the act
    report = await wd.apply(decide_watchdog(snapshot, POLICY), snapshot)
    assert (report.timed_out, report.terminate_failed) == ([], [row.id])
    assert (await c.db.executions.get(row.id)).status is S.RUNNING
    assert await c.redis.slots.count("gone") == 1


async def test_a_finished_run_nobody_collected_ends_success_through_the_finalizer(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("quick", ["sh", "-c", "cat >/dev/null; echo fine"])
    await agent(c, "quick", runtime.url)
    row = await dispatched(c, "quick")
    client = c.directory.client_for(await c.db.agents.get("quick"))
    assert client is not None
    await client.get(row.id, wait_s=20)  # finished; no monitor is watching
    c.clock.advance(3600)  # however old: a run that finished is never failed
    wd = watchdog(c)
    assert (await wd.run_cycle()).waiting == [row.id]  # the monitor may be collecting it
    c.clock.advance(5)
    report = await wd.run_cycle()
    assert report.handed_over == [row.id]
    assert await last_event(c, row.id) == (S.RUNNING, S.FINALIZING, Cause.CHILD_EXITED,
                                           "watchdog")
    await c.finalizer.run_once()
    done = await c.db.executions.get(row.id)
    assert (done.status, done.output_tail) == (S.SUCCESS, "fine\n")
    assert await c.redis.slots.count("quick") == 0


async def test_a_run_unknown_to_the_runtime_waits_out_the_grace_then_is_orphaned_and_retried(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("forgetful", SLEEPER)
    await agent(c, "forgetful", runtime.url, max_attempts=2)
    row = await claimed(c, "forgetful")
    wd = watchdog(c)
    c.clock.advance(9.999)
    assert (await wd.run_cycle()).waiting == [row.id]
    c.clock.advance(0.001)
    report = await wd.run_cycle()
    assert (report.orphaned, report.retried) == ([row.id], [row.id])
    failed = await c.db.executions.get(row.id)
    assert (failed.status, failed.error_class) == (S.FAILED, "orphaned")
    assert "the agent has no record of it" in (failed.error or "")
    assert await c.redis.slots.count("forgetful") == 0
    [again] = [r for r in await c.db.executions.list() if r.retry_of == row.id]
    assert (again.status, again.attempt, again.not_before_ms) == (
        S.QUEUED, 2, c.clock.now_ms() + 2_000)
    assert (await c.dispatcher.run_once()).claimed == []  # its backoff first
    c.clock.advance(2)
    assert (await c.dispatcher.run_once()).dispatched == [again.id]


async def test_a_run_its_runtime_runs_for_a_terminal_row_is_terminated_as_a_stray(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    row = await cancelled_while_running(c, start_runtime, "stray")
    report = await watchdog(c).run_cycle()
    assert report.strays == [row.id]
    assert await registry_state(c, "stray", row.id) is RunState.FINISHED
    assert await last_event(c, row.id) == (S.CANCELLED, S.CANCELLED, Cause.STRAY_TERMINATED,
                                           "watchdog")


async def test_an_unreachable_agent_is_skipped_then_lost_fenced_and_unfenced_once_it_answers(
    controllers: Controllers, start_runtime: StartRuntime, unused_tcp_port: int
) -> None:
    c = controllers
    await agent(c, "far", f"http://127.0.0.1:{unused_tcp_port}", max_attempts=2)
    row = await claimed(c, "far")
    wd = watchdog(c)
    first = await wd.run_cycle()
    assert (first.skipped, first.lost) == (["far"], [])
    c.clock.advance(59.999)
    assert (await wd.run_cycle()).lost == []
    c.clock.advance(0.001)
    report = await wd.run_cycle()
    assert (report.lost, report.retried, report.fenced) == ([row.id], [row.id], ["far"])
    failed = await c.db.executions.get(row.id)
    assert (failed.status, failed.error_class) == (S.FAILED, "agent_lost")
    assert "unreachable for 60 s" in (failed.error or "")
    assert await c.redis.slots.count("far") == 0
    c.clock.advance(10)  # past the retry's backoff: still fenced, nothing is dispatched
    assert (await c.dispatcher.run_once()).claimed == []
    assert (await wd.run_cycle()).lost == []  # a second cycle acts on nothing
    runtime = await start_runtime("far", SLEEPER)  # the agent answers again
    await c.db.agents.update("far", url=runtime.url)
    back = await wd.run_cycle()
    assert (back.came_back, back.unfenced) == (["far"], ["far"])
    [again] = [r for r in await c.db.executions.list() if r.retry_of == row.id]
    assert (await c.dispatcher.run_once()).dispatched == [again.id]
    said = [(e.type, e.data.get("change") or e.data.get("action"))
            for e in await c.db.fleet_events.read(0, 100) if e.agent == "far"]
    assert said == [("agent.changed", "created"), ("agent.changed", "runtime_down"),
                    ("recovery.action", "fenced"), ("agent.changed", "updated"),
                    ("agent.changed", "runtime_up"), ("recovery.action", "unfenced")]


async def test_the_outage_clock_survives_a_control_plane_restart(
    controllers: Controllers, unused_tcp_port: int
) -> None:
    c = controllers
    await agent(c, "far", f"http://127.0.0.1:{unused_tcp_port}")
    row = await claimed(c, "far")
    await watchdog(c).run_cycle()  # the outage starts; then this control plane goes away
    c.clock.advance(60)
    report = await watchdog(c).run_cycle()  # a new one (or another replica) counts from then
    assert report.lost == [row.id]


async def test_most_of_the_fleet_unreachable_at_once_recovers_nothing(
    controllers: Controllers, unused_tcp_port: int
) -> None:
    c = controllers
    telemetry = Telemetry()
    for name, port in (("x", unused_tcp_port), ("y", unused_tcp_port + 1)):
        await agent(c, name, f"http://127.0.0.1:{port}")
    rows = [await claimed(c, "x"), await claimed(c, "y")]
    wd = watchdog(c, telemetry=telemetry)
    await wd.run_cycle()
    c.clock.advance(600)
    report = await wd.run_cycle()
    assert report.systemic and report.lost == [] and report.fenced == []
    assert [(await c.db.executions.get(r.id)).status for r in rows] == [S.RUNNING, S.RUNNING]
    assert "shepherd_watchdog_systemic_total 2.0" in generate_latest(telemetry.registry).decode()
    # The outage clocks start over: one agent still down 59 s later is not lost yet.
    health = await c.redis.health.read(["x", "y"])
    assert {h.unreachable_since_ms for h in health.values()} == {c.clock.now_ms()}


# -- robustness ----------------------------------------------------------------------------------


async def test_a_fault_while_judging_one_row_does_not_stop_the_cycle_for_the_others(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("f", SLEEPER)
    await agent(c, "f", runtime.url)
    rows = [await claimed(c, "f") for _ in range(3)]
    bad = rows[1].id

    def judge(row: RowFacts, facts: AgentFacts, now_ms: int, policy: WatchdogPolicy
              ) -> RowDecision:
        if row.id == bad:
            raise RuntimeError("injected")
        return judge_row(row, facts, now_ms, policy)

    c.clock.advance(11)
    report = await watchdog(c, judge=judge).run_cycle()
    assert sorted(report.orphaned) == sorted([rows[0].id, rows[2].id])
    assert report.faults == [f"{bad}: RuntimeError: injected"]
    assert (await c.db.executions.get(bad)).status is S.RUNNING


async def test_a_second_cycle_on_the_same_state_acts_on_nothing(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("twice", SLEEPER)
    await agent(c, "twice", runtime.url, execution_timeout_s=3600, max_attempts=3)
    timed = await dispatched(c, "twice")
    await set_timeout(c, timed.id, 1)
    orphan = await claimed(c, "twice")
    c.clock.advance(40)
    wd = watchdog(c)
    first = await wd.run_cycle()
    assert (first.timed_out, first.orphaned) == ([timed.id], [orphan.id])
    second = await wd.run_cycle()
    acted = [getattr(second, k) for k in ("timed_out", "handed_over", "orphaned", "lost",
                                          "strays", "retried", "fenced", "unfenced")]
    assert acted == [[]] * 8
    assert len([r for r in await c.db.executions.list() if r.retry_of]) == 1


@pytest.mark.parametrize("path", ["timeout", "hand_over"])
async def test_a_run_completing_while_the_watchdog_acts_ends_once_with_one_release(
    controllers: Controllers, start_runtime: StartRuntime, path: str
) -> None:
    c = controllers
    runtime = await start_runtime("race", ["sh", "-c", "cat >/dev/null; sleep 0.3"])
    racer = await agent(c, "race", runtime.url, execution_timeout_s=3600)
    row = await dispatched(c, "race")
    client = c.directory.client_for(racer)
    assert client is not None
    if path == "timeout":
        await set_timeout(c, row.id, 1)
        c.clock.advance(40)
    wd = watchdog(c)
    snapshot, _ = await wd.collect()
    if path == "hand_over":
        await client.get(row.id, wait_s=20)
        await wd.collect()  # seen finished: past the hand-over grace by the next look
        c.clock.advance(5)
        snapshot, _ = await wd.collect()
    plan = decide_watchdog(snapshot, POLICY)
    assert [d.action.value for d in plan.actions] == [
        "timed_out" if path == "timeout" else "handed_to_finalizer"]
    await client.get(row.id, wait_s=20)  # the child completes normally meanwhile
    releases: list[bool] = []
    real_release = c.redis.slots.release

    async def counted(agent_name: str, execution_id: str) -> bool:
        released = await real_release(agent_name, execution_id)
        releases.append(released)
        return released

    c.redis.slots.release = counted  # type: ignore[method-assign]
    await asyncio.gather(wd.apply(plan, snapshot),
                         c.monitor.sync_agent(racer, client))
    await c.finalizer.run_once()
    events = await c.db.executions.events(row.id)
    terminal = [e for e in events if e.to_status.is_terminal]
    assert len(terminal) == 1
    assert releases.count(True) == 1
    assert (await c.db.executions.get(row.id)).status is terminal[0].to_status


# -- triggers ------------------------------------------------------------------------------------


async def test_a_reconcile_request_wakes_a_targeted_cycle_that_consumes_it(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("t", SLEEPER)
    await agent(c, "t", runtime.url)
    await agent(c, "other", runtime.url)
    wd = watchdog(c)
    assert (await wd.run_once()).scope == "full"
    assert (await wd.run_once()).scope == "idle"  # nothing requested, no full cycle due
    listening = asyncio.create_task(wd.triggers.listen(c.redis))
    try:
        for _ in range(200):
            if await c.redis.reconcile.request("t", "runtime boot_id changed", 1):
                break
            await asyncio.sleep(0.01)
        assert await wd.triggers.wait(5.0)  # woken at once, not after the interval
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
    report = await wd.run_once()
    assert (report.scope, report.agents, report.requests) == ("targeted", ["t"], ["t"])
    assert await c.redis.reconcile.take("t") is None


async def test_the_monitor_asks_for_a_reconcile_when_a_running_row_is_unknown_to_the_runtime(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("m", SLEEPER)
    watched = await agent(c, "m", runtime.url)
    await claimed(c, "m")
    client = c.directory.client_for(watched)
    assert client is not None
    await c.monitor.sync_agent(watched, client)
    request = await c.redis.reconcile.take("m")
    assert request is not None and request.reason.startswith("unknown to runtime")


async def test_a_full_cycle_is_due_when_an_unreachable_agent_turns_lost_not_an_interval_later(
    controllers: Controllers, unused_tcp_port: int
) -> None:
    c = controllers
    await agent(c, "late", f"http://127.0.0.1:{unused_tcp_port}")
    row = await claimed(c, "late")
    wd = watchdog(c)
    await wd.run_cycle()  # the outage starts
    c.clock.advance(50)
    await wd.run_cycle()  # the next full cycle would come 15 s later, 5 s after it turns lost
    c.clock.advance(10)
    report = await wd.run_once()
    assert (report.scope, report.lost) == ("full", [row.id])


async def test_the_dispatcher_wakes_when_a_retry_is_queued(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("w", SLEEPER)
    await agent(c, "w", runtime.url, max_attempts=2)
    await claimed(c, "w")
    wakeup = Wakeup()
    c.clock.advance(11)
    await watchdog(c, dispatch_wakeup=wakeup).run_cycle()
    assert await wakeup.wait(0.1)


async def test_a_stopped_monitor_gives_back_the_leases_of_the_agents_it_watched(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("leased", SLEEPER)
    await agent(c, "leased", runtime.url)
    await c.monitor.run_once()
    key = c.redis.keys.monitor_lease("leased")
    for _ in range(100):
        if await c.redis.leases.owner(key):
            break
        await asyncio.sleep(0.02)
    assert await c.redis.leases.owner(key) == "test-plane"
    await c.monitor.stop()
    assert await c.redis.leases.owner(key) is None


async def test_the_triggers_end_a_wait_at_the_due_instant_then_forget_it() -> None:
    from shepherd.controllers.triggers import WatchdogTriggers

    triggers = WatchdogTriggers()
    triggers.wake_in(0.05)
    assert await asyncio.wait_for(triggers.wait(60), 5) is False  # ended by the due instant
    await asyncio.sleep(0.01)
    waited = asyncio.create_task(triggers.wait(60))
    await asyncio.sleep(0.1)
    assert not waited.done()  # the due instant passed: back to the interval
    triggers.note("a")
    assert await asyncio.wait_for(waited, 5) is True  # a request ends it at once
    assert triggers.take() == {"a"} and triggers.take() == set()


@pytest.mark.parametrize("acked", [False, True], ids=["finished", "acked"])
async def test_a_stray_whose_child_ended_before_its_terminate_is_left_without_a_note(
    controllers: Controllers, start_runtime: StartRuntime, monkeypatch: pytest.MonkeyPatch,
    acked: bool,
) -> None:
    """A run seen running in the registry whose row then ended may just have been quick (it
    started after the cycle read SQL): when its terminate finds it finished, or already acked
    and forgotten, nothing was a stray: no note, no warning, the agent counts as clean."""
    terminate = AgentClient.terminate

    async def ended_first(self: AgentClient, execution_id: str) -> object:
        await terminate(self, execution_id)  # the child ends just before the watchdog's call
        if acked:
            await self.ack_many([execution_id])
        return await terminate(self, execution_id)

    monkeypatch.setattr(AgentClient, "terminate", ended_first)
    c = controllers
    row = await cancelled_while_running(c, start_runtime, "quick")
    report = await watchdog(c).run_cycle()
    assert (report.strays, report.finished_meanwhile, report.terminate_failed) == (
        [], [row.id], [])
    assert [e.cause for e in await c.db.executions.events(row.id)][-1] is Cause.CANCEL
