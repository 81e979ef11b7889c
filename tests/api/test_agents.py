"""``/api/agents``: list with live capacity, show, create, change, delete."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.api.helpers import start_running, submit_on
from tests.stores.redis.helpers import take_slot


async def test_the_agent_list_shows_slots_in_use_and_backlog(api: Api) -> None:
    running = await submit_on(api, "alpha")
    await start_running(api, running.id)
    await submit_on(api, "alpha")
    await submit_on(api, "alpha")
    async with api.client("viewer") as client:
        agents = {a["name"]: a for a in (await client.get("/api/agents")).json()}
    assert (agents["alpha"]["slots_in_use"], agents["alpha"]["backlog"]) == (1, 2)
    assert (agents["beta"]["slots_in_use"], agents["beta"]["backlog"]) == (0, 0)
    assert agents["beta"]["command"] == ["true"]


async def test_an_agent_is_created_changed_and_shown_without_its_webhook_secret(api: Api) -> None:
    body = {
        "name": "gamma", "url": "http://gamma.test:9000", "max_parallel": 4, "tags": ["gpu"],
        "completion_webhook_url": "https://hooks.example/secret-path",
    }
    async with api.client("admin") as client:
        created = await client.post("/api/agents", json=body)
        patched = await client.patch("/api/agents/gamma", json={"max_parallel": 1,
                                                                "enabled": False})
        shown = await client.get("/api/agents/gamma")
    assert created.status_code == 201
    assert created.json()["max_parallel"] == 4
    assert created.json()["has_completion_webhook"] is True
    assert "secret-path" not in created.text + shown.text
    assert (patched.json()["max_parallel"], patched.json()["enabled"]) == (1, False)
    assert shown.json() == patched.json()


async def test_creating_an_agent_twice_is_409(api: Api) -> None:
    async with api.client("admin") as client:
        response = await client.post("/api/agents", json={"name": "alpha"})
    assert response.status_code == 409
    assert response.json()["code"] == "already_exists"


async def test_a_bad_agent_body_is_422_naming_the_field(api: Api) -> None:
    async with api.client("admin") as client:
        bad_name = await client.post("/api/agents", json={"name": "Has Spaces"})
        bad_parallel = await client.post("/api/agents", json={"name": "ok", "max_parallel": 0})
        unknown = await client.post("/api/agents", json={"name": "ok", "colour": "red"})
        null_patch = await client.patch("/api/agents/alpha", json={"max_parallel": None})
    assert bad_name.status_code == 422 and "body.name" in bad_name.json()["message"]
    assert "body.max_parallel" in bad_parallel.json()["message"]
    assert "body.colour: unknown field" in unknown.json()["message"]
    assert null_patch.status_code == 422 and "max_parallel" in null_patch.json()["message"]


async def test_deleting_an_agent_with_running_work_is_409_and_without_is_204(api: Api) -> None:
    running = await submit_on(api, "alpha")
    await start_running(api, running.id)
    redis = api.ctx.redis
    await redis.client.hset(redis.keys.agent_cursor("beta"), mapping={"seq": 1, "boot_id": "b"})
    await take_slot(redis, "beta", "stale", max_parallel=3, timeout_s=60, now_ms=1, holder="t")
    async with api.client("admin") as client:
        refused = await client.delete("/api/agents/alpha")
        deleted = await client.delete("/api/agents/beta")
        gone = await client.get("/api/agents/beta")
        names = [a["name"] for a in (await client.get("/api/agents")).json()]
    assert refused.status_code == 409 and "running" in refused.json()["message"]
    assert deleted.status_code == 204
    assert gone.status_code == 404
    assert names == ["alpha"]
    left = [k async for k in redis.client.scan_iter(match=redis.keys.all_pattern())]
    assert not [k for k in left if "beta" in k]


async def test_an_unknown_agent_is_404(api: Api) -> None:
    async with api.client("admin") as client:
        for response in (
            await client.get("/api/agents/nobody"),
            await client.patch("/api/agents/nobody", json={"enabled": False}),
            await client.delete("/api/agents/nobody"),
        ):
            assert response.status_code == 404
            assert response.json()["code"] == "agent_not_found"


async def test_a_recreated_agent_shows_only_its_own_executions(api: Api) -> None:
    old = await submit_on(api, "beta")
    async with api.client("admin") as client:
        assert (await client.delete("/api/agents/beta")).status_code == 204
        created = await client.post("/api/agents", json={"name": "beta", "url": "http://h:1"})
        new = (await client.post("/api/executions", json={"agent": "beta"})).json()
        mine = (await client.get("/api/executions", params={"agent": "beta"})).json()["items"]
        earlier = (await client.get("/api/executions", params={
            "agent": "beta", "agent_generation": 1})).json()["items"]
        by_id = await client.get(f"/api/executions/{old.id}")
    assert created.json()["generation"] == 2
    assert [e["id"] for e in mine] == [new["id"]] and new["agent_generation"] == 2
    assert [e["id"] for e in earlier] == [old.id]
    assert by_id.status_code == 200 and by_id.json()["agent_generation"] == 1
