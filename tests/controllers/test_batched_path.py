"""The batched execution path through a real runtime: a pass starts an agent's claimed rows in
one request, and the watcher stores a page of exits, whose events carry their results, in one
transaction (``running -> finalizing -> success|failed``), frees their slots and acks them. A
runtime that predates the batch route still gets its rows, one request each."""

from __future__ import annotations

import asyncio

import pytest

from shepherd.agent_client.client import AgentClient
from shepherd.agent_client.protocol import StartRequest
from shepherd.controllers.dispatcher import Dispatcher
from shepherd.controllers.start_records import StartRecorder
from shepherd.core.status import Cause
from shepherd.core.status import ExecutionStatus as S
from shepherd.errors import AgentRejected
from shepherd.stores.sql.starts import RuntimeStart
from tests.controllers.conftest import Controllers
from tests.controllers.test_execution_path import add_agent, submit
from tests.fixtures.runtimes import StartRuntime

# The children outlive the watcher's first registry pass, so their exits come as events.
EXIT_BY_INPUT = ["sh", "-c", 'read code; sleep 0.5; echo "out $code"; exit "$code"']
RUNS = 6


async def _until_ended(c: Controllers, ids: list[str], limit_s: float = 20) -> None:
    for _ in range(int(limit_s / 0.05)):
        if all(s.is_terminal for s in (await c.db.executions.statuses(ids)).values()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not all ended: {await c.db.executions.statuses(ids)}")


async def _until_forgotten(client: AgentClient) -> None:
    """Until the runtime holds no result any more (the watcher acked them all)."""
    for _ in range(100):
        if not (await client.list_executions()).executions:
            return
        await asyncio.sleep(0.05)
    assert (await client.list_executions()).executions == []


async def _watching(c: Controllers) -> None:
    """Start the watcher and give it time for its first registry pass and long-poll."""
    await c.monitor.run_once()
    await asyncio.sleep(0.5)


async def test_a_pass_starts_its_rows_together_and_the_watcher_stores_each_result_once(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("batch", EXIT_BY_INPUT)
    agent = await add_agent(c, "batch", runtime.url, max_parallel_tasks=RUNS)
    rows = [await submit(c, "batch", str(i % 2)) for i in range(RUNS)]
    await _watching(c)
    report = await c.dispatcher.run_once()
    assert report.claimed == sorted(r.id for r in rows)  # queue order (one instant: by id)
    assert sorted(report.dispatched) == sorted(r.id for r in rows)
    ids = [r.id for r in rows]
    await _until_ended(c, ids)
    for i, row in enumerate(rows):
        done = await c.db.executions.get(row.id)
        assert (done.status, done.exit_code) == ((S.SUCCESS, 0) if i % 2 == 0 else
                                                 (S.FAILED, 1))
        assert done.output_tail == f"out {i % 2}\n"
        events = [(e.from_status, e.to_status, e.actor)
                  for e in await c.db.executions.events(row.id)]
        assert events[2:] == [(S.RUNNING, S.FINALIZING, "monitor"),
                              (S.FINALIZING, done.status, "monitor")]
    assert await c.redis.slots.count("batch") == 0
    client = c.directory.client_for(agent)
    assert client is not None
    await _until_forgotten(client)  # acked after the commit: the runtime forgets them


async def test_results_are_judged_by_the_agent_as_it_is_when_their_exits_arrive(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    """The watcher reads the agent once per page, after the long-poll answers: success codes
    changed while the children ran apply to their results."""
    c = controllers
    runtime = await start_runtime("judged", EXIT_BY_INPUT)
    await add_agent(c, "judged", runtime.url, max_parallel_tasks=2)
    rows = [await submit(c, "judged", "1") for _ in range(2)]
    await _watching(c)
    assert len((await c.dispatcher.run_once()).dispatched) == 2
    await c.db.agents.update("judged", success_exit_codes=[0, 1])  # the children sleep 0.5 s
    await _until_ended(c, [r.id for r in rows])
    for row in rows:
        assert (await c.db.executions.get(row.id)).status is S.SUCCESS


async def test_a_runtime_without_the_batch_route_gets_one_start_request_per_row(
    controllers: Controllers, start_runtime: StartRuntime, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def predates_batches(self: AgentClient, requests: object) -> object:
        raise AgentRejected(f"agent {self.name}: POST /v1/starts: 404 route_not_found", 404)

    monkeypatch.setattr(AgentClient, "start_many", predates_batches)
    c = controllers
    runtime = await start_runtime("old", EXIT_BY_INPUT)
    await add_agent(c, "old", runtime.url, max_parallel_tasks=3)
    rows = [await submit(c, "old", "0") for _ in range(3)]
    await _watching(c)
    report = await c.dispatcher.run_once()
    assert sorted(report.dispatched) == sorted(r.id for r in rows)
    assert report.rejected == []
    await _until_ended(c, [r.id for r in rows])
    assert {(await c.db.executions.get(r.id)).status for r in rows} == {S.SUCCESS}


async def test_a_pass_that_hands_over_in_the_background_ends_at_its_claims(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    """The control plane's dispatcher: a pass ends once its rows are claimed, the next one may
    claim while the runtime answers, and ``stop`` waits for every start in flight. A runtime
    that refuses the start gets its rows back in the backlog, as in the foreground."""
    c = controllers
    dispatcher = Dispatcher(c.db, c.redis, c.directory, c.clock, max_queue_age_s=86_400,
                            hand_over_in_background=True)
    runtime = await start_runtime("bg", EXIT_BY_INPUT)
    await add_agent(c, "bg", runtime.url, max_parallel_tasks=RUNS)
    await add_agent(c, "nobody", "http://127.0.0.1:9")  # nothing listens on the discard port
    rows = [await submit(c, "bg", "0") for _ in range(3)]
    lost = await submit(c, "nobody", "0")
    report = await dispatcher.run_once()
    assert sorted(report.claimed) == sorted([*(r.id for r in rows), lost.id])
    again = await dispatcher.run_once()  # the claimed rows are nobody's to claim twice (the
    assert not set(again.claimed) & {r.id for r in rows}  # refused one may be back already)
    await dispatcher.stop()
    assert sorted(report.dispatched) == sorted(r.id for r in rows)
    assert report.refused == [lost.id]
    for row in rows:
        started = await c.db.executions.get(row.id)
        assert (started.status, started.pid is not None) == (S.RUNNING, True)
    assert (await c.db.executions.get(lost.id)).status is S.QUEUED
    assert await c.redis.slots.count("nobody") == 0


async def test_a_result_stored_before_its_start_was_recorded_still_says_where_it_ran(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    """A child can exit, and its result be stored, before the dispatcher records the runtime's
    answer to the start (which then finds the row no longer running): the stored result carries
    the pid, start instant and boot id the runtime recorded."""
    c = controllers
    runtime = await start_runtime("quick", EXIT_BY_INPUT)
    agent = await add_agent(c, "quick", runtime.url, max_parallel_tasks=1)
    row = await submit(c, "quick", "0")
    await _watching(c)
    assert await c.db.executions.claim_many([row.id], c.clock.now_ms(), "test") == [True]
    client = c.directory.client_for(agent)
    assert client is not None
    started = await client.start(StartRequest(execution_id=row.id, input="0",
                                              timeout_s=row.timeout_s))
    await _until_ended(c, [row.id])
    done = await c.db.executions.get(row.id)
    assert done.status is S.SUCCESS
    assert (done.pid, done.started_at_ms, done.runtime_boot_id) == (
        started.pid, started.started_at_ms, started.boot_id)


async def test_a_result_whose_row_ended_meanwhile_is_acked_without_a_write(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    """The watcher plans a result from the row as the dispatcher claimed it. A row that ended by
    another path while its child ran (an operator's cancel that never reached the runtime)
    loses the CAS: nothing is written, and the runtime is still told to forget the result."""
    c = controllers
    runtime = await start_runtime("ended", EXIT_BY_INPUT)
    agent = await add_agent(c, "ended", runtime.url, max_parallel_tasks=1)
    row = await submit(c, "ended", "0")
    await _watching(c)
    assert (await c.dispatcher.run_once()).dispatched == [row.id]
    assert await c.db.executions.transition(row.id, S.CANCELLED, Cause.CANCEL, actor="test",
                                            now_ms=c.clock.now_ms())
    before = await c.db.executions.events(row.id)
    client = c.directory.client_for(agent)
    assert client is not None
    await _until_forgotten(client)  # the child exits after 0.5 s; its result is acked, not stored
    assert (await c.db.executions.get(row.id)).status is S.CANCELLED
    assert await c.db.executions.events(row.id) == before


@pytest.mark.parametrize("takes_acks_on_polls", [True, False], ids=["current", "older"])
async def test_stored_results_are_acked_on_the_next_poll_or_apart_to_an_older_runtime(
    controllers: Controllers, start_runtime: StartRuntime, monkeypatch: pytest.MonkeyPatch,
    takes_acks_on_polls: bool,
) -> None:
    """The acks of a page's results ride the watcher's next poll; a runtime that predates that
    (its page says nothing of them) gets them in a request of their own."""
    apart: list[list[str]] = []
    ack_many, events = AgentClient.ack_many, AgentClient.events

    async def counted(self: AgentClient, execution_ids: list[str]) -> object:
        apart.append(execution_ids)
        return await ack_many(self, execution_ids)

    async def older(self: AgentClient, after: int, wait_s: float, until_exit: bool = False,
                    ack: object = ()) -> object:
        return await events(self, after, wait_s, until_exit)  # the ids never reach it

    monkeypatch.setattr(AgentClient, "ack_many", counted)
    if not takes_acks_on_polls:
        monkeypatch.setattr(AgentClient, "events", older)
    c = controllers
    runtime = await start_runtime("acks", EXIT_BY_INPUT)
    agent = await add_agent(c, "acks", runtime.url, max_parallel_tasks=2)
    rows = [await submit(c, "acks", "0") for _ in range(2)]
    await _watching(c)
    await c.dispatcher.run_once()
    await _until_ended(c, [r.id for r in rows])
    client = c.directory.client_for(agent)
    assert client is not None
    await _until_forgotten(client)
    acked_apart = sorted(i for ids in apart for i in ids)
    assert acked_apart == ([] if takes_acks_on_polls else sorted(r.id for r in rows))


QUICK_OR_SLOW = ["sh", "-c", 'read s; sleep "$s"']


def _in_background(c: Controllers, record_after_s: float) -> Dispatcher:
    return Dispatcher(c.db, c.redis, c.directory, c.clock, max_queue_age_s=86_400,
                      hand_over_in_background=True, claimed=c.claimed,
                      record_starts_after_s=record_after_s)


async def _recorded_starts(c: Controllers, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    recorded: list[list[str]] = []
    record_starts = c.db.executions.record_starts

    async def counted(starts: list[RuntimeStart]) -> list[bool]:
        recorded.append([s.execution_id for s in starts])
        return await record_starts(starts)

    monkeypatch.setattr(c.db.executions, "record_starts", counted)
    return recorded


async def test_a_start_is_recorded_a_moment_later_unless_its_result_came_first(
    controllers: Controllers, start_runtime: StartRuntime, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Beside the passes, the runtime's answers are written a moment later, together; a run
    whose result a watcher took up meanwhile needs none: its result carries the start."""
    c = controllers
    recorded = await _recorded_starts(c, monkeypatch)
    dispatcher = _in_background(c, record_after_s=2.0)
    runtime = await start_runtime("mixed", QUICK_OR_SLOW)
    await add_agent(c, "mixed", runtime.url, max_parallel_tasks=2)
    quick, slow = await submit(c, "mixed", "0"), await submit(c, "mixed", "30")
    await _watching(c)
    await dispatcher.run_once()
    await _until_ended(c, [quick.id])
    assert (await c.db.executions.get(quick.id)).pid is not None  # from its result
    for _ in range(100):
        if (await c.db.executions.get(slow.id)).pid is not None:
            break
        await asyncio.sleep(0.05)
    assert (await c.db.executions.get(slow.id)).pid is not None
    assert recorded == [[slow.id]]
    await dispatcher.stop()


async def test_a_stopping_dispatcher_records_the_starts_it_holds_at_once(
    controllers: Controllers, start_runtime: StartRuntime, monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = controllers
    recorded = await _recorded_starts(c, monkeypatch)
    dispatcher = _in_background(c, record_after_s=600)
    runtime = await start_runtime("held", QUICK_OR_SLOW)
    await add_agent(c, "held", runtime.url)
    row = await submit(c, "held", "30")
    report = await dispatcher.run_once()
    for _ in range(100):
        if report.dispatched:
            break
        await asyncio.sleep(0.05)
    assert report.dispatched == [row.id]
    assert (await c.db.executions.get(row.id)).pid is None  # answered, not yet written
    await dispatcher.stop()
    assert recorded == [[row.id]]
    assert (await c.db.executions.get(row.id)).pid is not None


async def test_a_stop_during_a_write_of_starts_returns_once_it_is_written(
    controllers: Controllers, monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = controllers
    written: list[str] = []
    record_starts = c.db.executions.record_starts

    async def slow(starts: list[RuntimeStart]) -> list[bool]:
        await asyncio.sleep(0.3)
        done = await record_starts(starts)
        written.extend(s.execution_id for s in starts)
        return done

    monkeypatch.setattr(c.db.executions, "record_starts", slow)
    recorder = StartRecorder(c.db, c.claimed, delay_s=0.01)
    recorder.add([RuntimeStart("e1", 4242, 1, "boot")])
    await asyncio.sleep(0.1)  # its write is under way
    await recorder.stop()
    assert written == ["e1"]
