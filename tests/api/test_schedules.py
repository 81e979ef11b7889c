"""``/api/schedules``: create (armed), list, show, change, enable/disable, run now, delete."""

from __future__ import annotations

from shepherd.core.cron import next_after_ms
from tests.api.conftest import Api
from tests.api.helpers import schedule_on


async def test_a_new_schedule_is_armed_for_its_next_tick(api: Api) -> None:
    async with api.client("operator") as client:
        response = await client.post("/api/schedules", json={
            "agent": "alpha", "cron": "*/10 * * * *", "name": "sweep", "input": "go",
            "overlap": "queue",
        })
    assert response.status_code == 201
    body = response.json()
    assert body["next_run_at_ms"] == next_after_ms("*/10 * * * *", "UTC", api.clock.now_ms())
    assert body["next_run_at"].endswith("Z")
    assert (body["name"], body["overlap"], body["enabled"]) == ("sweep", "queue", True)


async def test_schedules_list_by_agent_and_show_one(api: Api) -> None:
    mine = await schedule_on(api, "alpha")
    await schedule_on(api, "beta")
    async with api.client("viewer") as client:
        listed = (await client.get("/api/schedules", params={"agent": "alpha"})).json()
        every = (await client.get("/api/schedules")).json()
        shown = (await client.get(f"/api/schedules/{mine.id}")).json()
    assert [s["id"] for s in listed] == [mine.id]
    assert len(every) == 2
    assert shown["id"] == mine.id


async def test_disabling_disarms_and_enabling_rearms_after_now(api: Api) -> None:
    schedule = await schedule_on(api, "alpha", "0 * * * *")
    async with api.client("operator") as client:
        disabled = (await client.post(f"/api/schedules/{schedule.id}/disable")).json()
        api.clock.advance(3 * 3600)
        enabled = (await client.post(f"/api/schedules/{schedule.id}/enable")).json()
    assert disabled["enabled"] is False
    assert enabled["enabled"] is True
    assert enabled["next_run_at_ms"] == next_after_ms("0 * * * *", "UTC", api.clock.now_ms())


async def test_changing_the_cron_moves_the_next_tick(api: Api) -> None:
    schedule = await schedule_on(api, "alpha", "0 0 * * *")
    async with api.client("operator") as client:
        response = await client.patch(f"/api/schedules/{schedule.id}",
                                      json={"cron": "*/5 * * * *", "timeout_s": 60})
    body = response.json()
    assert body["next_run_at_ms"] == next_after_ms("*/5 * * * *", "UTC", api.clock.now_ms())
    assert body["timeout_s"] == 60


async def test_run_now_submits_the_schedules_work(api: Api) -> None:
    schedule = await schedule_on(api, "alpha")
    async with api.client("operator") as client:
        response = await client.post(f"/api/schedules/{schedule.id}/run")
    assert response.status_code == 201
    row = response.json()
    assert (row["schedule_id"], row["input"], row["trigger"], row["status"]) == (
        schedule.id, "from cron", "manual", "queued",
    )


async def test_a_bad_schedule_is_422_naming_the_field(api: Api) -> None:
    async with api.client("operator") as client:
        bad_cron = await client.post("/api/schedules", json={"agent": "alpha", "cron": "never"})
        bad_zone = await client.post(
            "/api/schedules", json={"agent": "alpha", "cron": "* * * * *", "timezone": "Mars/Base"}
        )
        nul = await client.post(
            "/api/schedules", json={"agent": "alpha", "cron": "* * * * *", "input": "a\u0000b"}
        )
    assert bad_cron.status_code == 422 and "body.cron" in bad_cron.json()["message"]
    assert bad_zone.status_code == 422 and "body.timezone" in bad_zone.json()["message"]
    assert nul.status_code == 422 and "body.input" in nul.json()["message"]


async def test_deleting_a_schedule_makes_it_404(api: Api) -> None:
    schedule = await schedule_on(api, "alpha")
    async with api.client("operator") as client:
        assert (await client.delete(f"/api/schedules/{schedule.id}")).status_code == 204
        for response in (
            await client.get(f"/api/schedules/{schedule.id}"),
            await client.delete(f"/api/schedules/{schedule.id}"),
            await client.post(f"/api/schedules/{schedule.id}/run"),
        ):
            assert response.status_code == 404
            assert response.json()["code"] == "schedule_not_found"


async def test_a_schedule_for_an_unknown_agent_is_404(api: Api) -> None:
    async with api.client("operator") as client:
        response = await client.post(
            "/api/schedules", json={"agent": "nobody", "cron": "* * * * *"}
        )
    assert response.status_code == 404
