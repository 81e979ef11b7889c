"""A token scoped to an agent sees and acts on that agent only; the rest answers 404."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.api.helpers import make_refs


async def test_a_scoped_token_lists_only_its_agent(api: Api) -> None:
    await make_refs(api)
    async with api.client("scoped") as client:
        agents = (await client.get("/api/agents")).json()
        schedules = (await client.get("/api/schedules")).json()
        executions = (await client.get("/api/executions")).json()["items"]
    assert [a["name"] for a in agents] == ["alpha"]
    assert {s["agent"] for s in schedules} == {"alpha"}
    assert executions and {e["agent"] for e in executions} == {"alpha"}


async def test_a_scoped_token_gets_404_for_everything_of_another_agent(api: Api) -> None:
    refs = await make_refs(api)
    async with api.client("scoped") as client:
        attempts = [
            await client.get("/api/agents/beta"),
            await client.get("/api/schedules", params={"agent": "beta"}),
            await client.get(f"/api/schedules/{refs.beta_schedule}"),
            await client.post(f"/api/schedules/{refs.beta_schedule}/run"),
            await client.get("/api/executions", params={"agent": "beta"}),
            await client.get(f"/api/executions/{refs.beta_execution}"),
            await client.post(f"/api/executions/{refs.beta_execution}/cancel"),
            await client.post("/api/executions", json={"agent": "beta", "input": "x"}),
            await client.post("/api/schedules", json={"agent": "beta", "cron": "* * * * *"}),
        ]
    assert [r.status_code for r in attempts] == [404] * len(attempts)
    assert all("beta" not in r.text or "no agent" in r.text for r in attempts)


async def test_a_scoped_token_acts_on_its_own_agent(api: Api) -> None:
    refs = await make_refs(api)
    async with api.client("scoped") as client:
        created = await client.post("/api/executions", json={"agent": "alpha", "input": "x"})
        cancelled = await client.post(f"/api/executions/{refs.execution}/cancel")
        ran = await client.post(f"/api/schedules/{refs.schedule}/run")
    assert (created.status_code, cancelled.status_code, ran.status_code) == (201, 200, 201)
