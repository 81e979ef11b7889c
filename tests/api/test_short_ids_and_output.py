"""Every execution route takes a unique prefix of an id (a prefix matching several is a 422 that
names some of them), and ``/output`` answers what the child printed, saying where it came from."""

from __future__ import annotations

from shepherd.core.ids import ExecutionId
from shepherd.core.models import TransitionFields
from shepherd.core.status import Cause, ExecutionStatus
from tests.api.conftest import Api
from tests.api.helpers import start_running, submit_on


def _common(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _shortest_unique(mine: str, other: str) -> str:
    return mine[: max(len(_common(mine, other)) + 1, 4)]


async def test_a_unique_prefix_names_the_execution_everywhere(api: Api) -> None:
    one, two = await submit_on(api, "alpha"), await submit_on(api, "alpha")
    short = _shortest_unique(one.id, two.id)
    async with api.client("operator") as client:
        shown = await client.get(f"/api/executions/{short}")
        assert shown.status_code == 200 and shown.json()["id"] == one.id
        output = await client.get(f"/api/executions/{short}/output")
        assert output.json()["execution_id"] == one.id
        cancelled = await client.post(f"/api/executions/{short}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["id"] == one.id


async def test_an_ambiguous_prefix_is_a_422_naming_the_matches(api: Api) -> None:
    one, two = await submit_on(api, "alpha"), await submit_on(api, "alpha")
    common = _common(one.id, two.id)
    async with api.client("viewer") as client:
        response = await client.get(f"/api/executions/{common}")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "ambiguous_id" and one.id in body["message"]


async def test_a_prefix_outside_a_scoped_tokens_agent_is_not_found(api: Api) -> None:
    beta = await submit_on(api, "beta")
    async with api.client("scoped") as client:
        response = await client.get(f"/api/executions/{beta.id[:-1]}")
    assert response.status_code == 404


async def test_output_of_a_queued_run_is_empty_and_of_an_ended_one_the_stored_tail(
    api: Api,
) -> None:
    row = await submit_on(api, "alpha")
    async with api.client("viewer") as client:
        queued = (await client.get(f"/api/executions/{row.id}/output")).json()
        assert (queued["output"], queued["source"], queued["complete"]) == ("", "none", False)
        await start_running(api, row.id)
        now = api.clock.now_ms()
        await api.db.executions.transition(
            ExecutionId(row.id), ExecutionStatus.FINALIZING, Cause.CHILD_EXITED, actor="t",
            now_ms=now, fields=TransitionFields(finished_at_ms=now, exit_code=0))
        await api.db.executions.transition(
            ExecutionId(row.id), ExecutionStatus.SUCCESS, Cause.FINALIZED, actor="t", now_ms=now,
            fields=TransitionFields(completed_at_ms=now, output_tail="all done\n"))
        ended = (await client.get(f"/api/executions/{row.id}/output")).json()
    assert (ended["output"], ended["source"], ended["complete"]) == ("all done\n", "stored", True)
