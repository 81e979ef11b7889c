"""``/api/fleet/apply``: a manifest as YAML or JSON; idempotent; errors name the path."""

from __future__ import annotations

from tests.api.conftest import Api

MANIFEST = """
agents:
  - name: alpha
    url: http://alpha.test
    max_parallel: 5
  - name: local
    command: [python3, -c, "print('hi')"]
schedules:
  - name: nightly
    agent: alpha
    cron: "0 3 * * *"
  - agent: local
    cron: "*/5 * * * *"
"""
YAML = {"Content-Type": "application/yaml"}


async def test_applying_a_yaml_manifest_reports_what_changed_and_then_nothing(api: Api) -> None:
    async with api.client("admin") as client:
        first = await client.post("/api/fleet/apply", content=MANIFEST, headers=YAML)
        second = await client.post("/api/fleet/apply", content=MANIFEST, headers=YAML)
    assert first.status_code == 200, first.text
    one = first.json()
    assert one["changed"] is True
    assert (one["agents"]["created"], one["agents"]["updated"]) == (["local"], ["alpha"])
    assert sorted(one["schedules"]["created"]) == ["local-1", "nightly"]
    assert one["unmanaged"] == ["beta"]
    two = second.json()
    assert two["changed"] is False
    assert sorted(two["agents"]["unchanged"]) == ["alpha", "local"]
    assert sorted(two["schedules"]["unchanged"]) == ["local-1", "nightly"]


async def test_a_json_manifest_works_the_same(api: Api) -> None:
    body = {"agents": [{"name": "gamma", "url": "http://gamma.test"}], "schedules": []}
    async with api.client("admin") as client:
        response = await client.post("/api/fleet/apply", json=body)
    assert response.status_code == 200
    assert response.json()["agents"]["created"] == ["gamma"]


async def test_dropping_a_schedule_from_the_manifest_deletes_it(api: Api) -> None:
    shorter = MANIFEST.split("  - agent: local")[0]
    async with api.client("admin") as client:
        await client.post("/api/fleet/apply", content=MANIFEST, headers=YAML)
        response = await client.post("/api/fleet/apply", content=shorter, headers=YAML)
        left = [s["name"] for s in (await client.get("/api/schedules")).json()]
    assert response.json()["schedules"]["deleted"] == ["local-1"]
    assert left == ["nightly"]


async def test_an_invalid_manifest_is_422_naming_the_path_and_changes_nothing(api: Api) -> None:
    bad = MANIFEST.replace("max_parallel: 5", "max_parallel: 0")
    async with api.client("admin") as client:
        response = await client.post("/api/fleet/apply", content=bad, headers=YAML)
        agents = [a["name"] for a in (await client.get("/api/agents")).json()]
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_manifest"
    assert "agents[0].max_parallel" in response.json()["message"]
    assert agents == ["alpha", "beta"]


async def test_unparseable_bodies_are_422_not_500(api: Api) -> None:
    async with api.client("admin") as client:
        bad_yaml = await client.post("/api/fleet/apply", content="agents: [", headers=YAML)
        bad_json = await client.post(
            "/api/fleet/apply", content="{", headers={"Content-Type": "application/json"}
        )
        not_a_map = await client.post("/api/fleet/apply", json=[1, 2])
        unknown_agent = await client.post(
            "/api/fleet/apply", json={"schedules": [{"agent": "ghost", "cron": "* * * * *"}]}
        )
    for response in (bad_yaml, bad_json, not_a_map, unknown_agent):
        assert response.status_code == 422, response.text
    assert "schedules[0].agent" in unknown_agent.json()["message"]
