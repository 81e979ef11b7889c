"""``/api/executions``: submit, list with filters and cursor paging, show, cancel, retry."""

from __future__ import annotations

from shepherd.core.ids import AgentName
from shepherd.core.status import ExecutionStatus
from shepherd.stores.sql.tables import executions
from tests.api.conftest import Api
from tests.api.helpers import start_running, submit_on


async def test_submitting_work_returns_the_queued_row_and_wakes_the_dispatcher(api: Api) -> None:
    async with api.client("operator") as client:
        response = await client.post(
            "/api/executions", json={"agent": "alpha", "input": "hi", "timeout_s": 30}
        )
    assert response.status_code == 201
    row = response.json()
    assert (row["agent"], row["status"], row["timeout_s"], row["trigger"]) == (
        "alpha", "queued", 30, "api",
    )
    assert row["created_by"] == "operator-token"
    assert row["queued_at"].endswith("Z") and isinstance(row["queued_at_ms"], int)
    assert await api.ctx.dispatch_wakeup.wait(0.01)


async def test_work_beyond_the_backlog_bound_is_recorded_as_skipped_with_its_reason(
    api: Api,
) -> None:
    await api.db.agents.update(AgentName("alpha"), max_backlog_depth=1)
    async with api.client("operator") as client:
        first = await client.post("/api/executions", json={"agent": "alpha"})
        second = await client.post("/api/executions", json={"agent": "alpha"})
    assert first.json()["status"] == "queued"
    assert second.status_code == 201
    assert second.json()["status"] == "skipped"
    assert "backlog full" in (second.json()["error"] or "")


async def test_submitting_to_an_unknown_agent_is_404(api: Api) -> None:
    async with api.client("operator") as client:
        response = await client.post("/api/executions", json={"agent": "nobody"})
    assert response.status_code == 404
    assert response.json()["code"] == "agent_not_found"


async def test_one_execution_comes_with_its_event_timeline(api: Api) -> None:
    row = await submit_on(api, "alpha")
    async with api.client("viewer") as client:
        await client.post(f"/api/executions/{row.id}/cancel")  # viewer: refused, no event
        body = (await client.get(f"/api/executions/{row.id}")).json()
    assert body["id"] == row.id
    assert [e["to_status"] for e in body["events"]] == ["queued"]
    assert body["events"][0]["at"].endswith("Z")


async def test_paging_walks_every_row_once_newest_first(api: Api) -> None:
    made = []
    for i in range(7):
        made.append((await submit_on(api, "alpha", f"n{i}")).id)
        api.clock.advance(1)
    seen: list[str] = []
    cursor = None
    async with api.client("viewer") as client:
        while True:
            params: dict[str, str | int] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/api/executions", params=params)).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert seen == list(reversed(made))


async def test_filters_narrow_the_list_by_status_agent_and_time(api: Api) -> None:
    early = await submit_on(api, "alpha")
    api.clock.advance(60)
    boundary_ms = api.clock.now_ms()
    late = await submit_on(api, "beta")
    async with api.client("operator") as client:
        await client.post(f"/api/executions/{early.id}/cancel")

        async def ids(**params: str | int) -> list[str]:
            page = (await client.get("/api/executions", params=params)).json()
            return [item["id"] for item in page["items"]]

        assert await ids(status="cancelled") == [early.id]
        assert await ids(agent="beta") == [late.id]
        assert await ids(since=boundary_ms) == [late.id]
        assert await ids(until=boundary_ms) == [early.id]
        iso = (await client.get(f"/api/executions/{late.id}")).json()["created_at"]
        assert await ids(since=iso) == [late.id]


async def test_bad_filters_are_422_naming_the_parameter(api: Api) -> None:
    async with api.client("viewer") as client:
        bad_since = await client.get("/api/executions", params={"since": "yesterday"})
        bad_status = await client.get("/api/executions", params={"status": "done"})
        bad_cursor = await client.get("/api/executions", params={"cursor": "zzz"})
        bad_limit = await client.get("/api/executions", params={"limit": 0})
    assert bad_since.status_code == 422 and "query.since" in bad_since.json()["message"]
    assert bad_status.status_code == 422 and "query.status" in bad_status.json()["message"]
    assert bad_cursor.status_code == 422 and "query.cursor" in bad_cursor.json()["message"]
    assert bad_limit.status_code == 422 and "query.limit" in bad_limit.json()["message"]


async def test_cancelling_running_work_frees_its_slot_and_stops_the_child(api: Api) -> None:
    row = await submit_on(api, "alpha")
    await start_running(api, row.id)
    assert await api.redis.slots.count("alpha") == 1
    async with api.client("operator") as client:
        response = await client.post(f"/api/executions/{row.id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert await api.redis.slots.count("alpha") == 0
    assert api.directory.runtime.terminated == [row.id]


async def test_cancelling_a_terminal_execution_is_409_with_its_status(api: Api) -> None:
    row = await submit_on(api, "alpha")
    async with api.client("operator") as client:
        assert (await client.post(f"/api/executions/{row.id}/cancel")).status_code == 200
        again = await client.post(f"/api/executions/{row.id}/cancel")
    assert again.status_code == 409
    assert "is cancelled" in again.json()["message"]
    assert api.directory.runtime.terminated == []


async def test_a_finished_row_flipped_back_to_running_by_hand_cannot_be_cancelled_again(
    api: Api,
) -> None:
    row = await submit_on(api, "alpha")
    async with api.client("operator") as client:
        assert (await client.post(f"/api/executions/{row.id}/cancel")).status_code == 200
        async with api.db.engine.begin() as conn:  # an operator's stray UPDATE
            await conn.execute(executions.update().where(executions.c.id == row.id)
                               .values(status="running", completed_at_ms=None))
        again = await client.post(f"/api/executions/{row.id}/cancel")
    assert again.status_code == 409
    assert "already ended" in again.json()["message"]
    events = await api.db.executions.events(row.id)
    assert [e.to_status for e in events] == [ExecutionStatus.QUEUED, ExecutionStatus.CANCELLED]
    assert api.directory.runtime.terminated == []


async def test_retry_queues_a_new_attempt_of_the_same_work(api: Api) -> None:
    row = await submit_on(api, "alpha", "same input")
    async with api.client("operator") as client:
        refused = await client.post(f"/api/executions/{row.id}/retry")
        await client.post(f"/api/executions/{row.id}/cancel")
        response = await client.post(f"/api/executions/{row.id}/retry")
    assert refused.status_code == 409 and "is queued" in refused.json()["message"]
    assert response.status_code == 201
    again = response.json()
    assert (again["retry_of"], again["attempt"], again["input"], again["status"]) == (
        row.id, 2, "same input", ExecutionStatus.QUEUED.value,
    )
    assert again["id"] != row.id


async def test_an_unknown_execution_is_404(api: Api) -> None:
    async with api.client("operator") as client:
        for response in (
            await client.get("/api/executions/17000000000000000000000"),
            await client.post("/api/executions/nope/cancel"),
            await client.post("/api/executions/nope/retry"),
        ):
            assert response.status_code == 404
            assert response.json()["code"] == "execution_not_found"
