"""``/api/canary``: the catalog, a cycle on demand (422 unknown id; after the one running, 409
when that one runs too long), the violations it stored with filters, stats and one by id, the
status; admins only."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from shepherd.alerts.service import AlertService
from shepherd.canary.collect import CollectConfig, Collector
from shepherd.canary.service import CanaryService
from shepherd.canary.snapshot import CanarySettings
from shepherd.core.models import Agent
from tests.api.conftest import Api
from tests.stores.redis.helpers import seal_epoch


class NoRuntimes:
    def client_for(self, agent: Agent) -> None:
        return None


@pytest.fixture
def canary(api: Api) -> CanaryService:
    collector = Collector(api.db, api.redis, NoRuntimes(), api.clock,
                          CollectConfig(CanarySettings(), {}))
    service = CanaryService(api.db, collector, AlertService(api.db, api.clock), api.clock)
    ctx = dataclasses.replace(api.ctx, canary=service)
    api.app.state.ctx = ctx
    api.ctx = ctx
    return service


async def phantom(api: Api) -> None:
    epoch = await seal_epoch(api.redis)
    await api.redis.slots.acquire("beta", "ghost", max_parallel=3, timeout_s=60,
                                  now_ms=api.clock.now_ms() - 60_000, holder="t", epoch=epoch)


async def test_the_catalog_lists_27_invariants_and_says_which_are_not_checked_here(
    api: Api, canary: CanaryService
) -> None:
    async with api.client() as client:
        found = (await client.get("/api/canary/invariants")).json()
    assert len(found) == 27
    assert {i["id"] for i in found if not i["checked"]} == {"R-02", "R-04"}


async def test_a_cycle_on_demand_returns_violations_transitions_and_stores_them(
    api: Api, canary: CanaryService
) -> None:
    await phantom(api)
    async with api.client() as client:
        cycle = (await client.post("/api/canary/run-cycle", json={})).json()
        [v] = cycle["violations"]
        assert (v["invariant_id"], v["entity"], v["severity"]) == ("S-01", "beta", "critical")
        assert cycle["transitions"] == ["S-01"]
        assert cycle["sources_unavailable"] == ["runtime:alpha"]  # no runtime answers here
        again = (await client.post("/api/canary/run-cycle", json={"ids": ["S-01"]})).json()
        assert again["checked"] == ["S-01"] and again["transitions"] == []
        listed = (await client.get("/api/canary/violations?invariant=S-01")).json()
        assert [x["id"] for x in listed] == [again["violations"][0]["id"], v["id"]]
        page = (await client.get(f"/api/canary/violations?before_id={listed[0]['id']}")).json()
        assert [x["id"] for x in page] == [v["id"]]
        one = (await client.get(f"/api/canary/violations/{v['id']}")).json()
        assert one["observed"]["phantom"] == ["ghost"]
        stats = (await client.get("/api/canary/violations/stats")).json()
        assert [(s["invariant_id"], s["count"]) for s in stats] == [("S-01", 2)]
        status = (await client.get("/api/canary/status")).json()
        assert status["enabled"] is False and status["last_cycle"]["checked"] == ["S-01"]


async def test_bad_requests_say_what_is_wrong(api: Api, canary: CanaryService) -> None:
    async with api.client() as client:
        unknown = await client.post("/api/canary/run-cycle", json={"ids": ["S-01", "X-99"]})
        assert unknown.status_code == 422 and "X-99" in unknown.json()["message"]
        assert (await client.get("/api/canary/violations?invariant=nope")).status_code == 422
        missing = await client.get("/api/canary/violations/999")
        assert missing.status_code == 404 and "999" in missing.json()["message"]


async def test_a_cycle_asked_while_one_runs_waits_for_it(
    api: Api, canary: CanaryService
) -> None:
    running = asyncio.create_task(canary.run_cycle())
    await asyncio.sleep(0)
    async with api.client() as client:
        after = await client.post("/api/canary/run-cycle", json={})
    await running
    assert after.status_code == 200, after.text


async def test_a_cycle_asked_while_one_runs_too_long_is_a_409(
    api: Api, canary: CanaryService
) -> None:
    canary.exclusive_wait_s = 0.05
    async with canary.exclusive(), api.client() as client:  # a cycle that does not end
        busy = await client.post("/api/canary/run-cycle", json={})
    assert busy.status_code == 409 and "already running" in busy.json()["message"]


@pytest.mark.parametrize("who", ["operator", "viewer", "scoped-admin"])
async def test_only_fleet_wide_admins_see_the_canary(
    api: Api, canary: CanaryService, who: str
) -> None:
    async with api.client(who) as client:
        assert (await client.get("/api/canary/violations")).status_code == 403
