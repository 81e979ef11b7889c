"""``GET /api/reaper``: the last pass, the finalize leases held now, the settings; scoped."""

from __future__ import annotations

from shepherd.api.instants import to_iso
from shepherd.core.ids import AgentName
from shepherd.core.models import Trigger
from tests.api.conftest import Api

DETAIL = {
    "at_ms": 1_700_000_000_000, "startup": True, "duration_ms": 8.5,
    "finalizer_liveness": True,
    "counts": {"1": {"attached": 1}, "2": {"deferred": 2, "finalized": 1, "result_lost": 0},
               "3": {"backstopped": 1, "terminated": 0}},
    "lost_race": 0, "faults": ["e9: LeaseUnknown: finalize lease of e9 unreadable"],
    "deferred": [
        {"execution_id": "e1", "agent": "alpha", "owner": "host:1:ab",
         "reason": "tier 2: finished 301 s ago; its finalizer host:1:ab is alive"},
        {"execution_id": "e2", "agent": "beta", "owner": "host:2:cd", "reason": "tier 2: ..."},
    ],
    "ids": {"finalized": ["e3"]},
}


async def test_before_any_pass_the_status_says_so_with_the_settings(api: Api) -> None:
    async with api.client("viewer") as client:
        found = (await client.get("/api/reaper")).json()
    assert (found["last_pass"], found["finalize_leases"]) == (None, [])
    assert found["settings"] == {
        "interval_s": 30.0, "finalize_grace_s": 300.0, "max_running_s": None,
        "finalizer_liveness": True, "finalize_lease_ttl_s": 30.0,
        "completion_budget": {"fetch_s": 15.0, "store_s": 30.0, "ack_s": 10.0, "total_s": 55.0},
    }


async def test_the_status_shows_the_last_pass_and_who_holds_a_finalize_lease_now(
    api: Api
) -> None:
    await api.redis.reports.save_detail("reaper", DETAIL)
    row = await api.db.executions.submit(agent=AgentName("alpha"), input="", trigger=Trigger.API,
                                         created_by="t")
    await api.redis.leases.acquire(api.redis.keys.finalize_lease(row.id), "host:1:ab", 20_000)
    async with api.client("viewer") as client:
        found = (await client.get("/api/reaper")).json()
    last = found["last_pass"]
    assert (last["at"], last["startup"], last["duration_ms"]) == (
        to_iso(1_700_000_000_000), True, 8.5)
    assert last["counts"]["2"] == {"deferred": 2, "finalized": 1, "result_lost": 0}
    assert [d["execution_id"] for d in last["deferred"]] == ["e1", "e2"]
    assert last["faults"] == ["e9: LeaseUnknown: finalize lease of e9 unreadable"]
    [lease] = found["finalize_leases"]
    assert (lease["execution_id"], lease["agent"], lease["owner"]) == (row.id, "alpha",
                                                                      "host:1:ab")
    assert 0 < lease["ttl_ms"] <= 20_000


async def test_a_scoped_token_sees_only_its_agents_rows_and_leases(api: Api) -> None:
    await api.redis.reports.save_detail("reaper", DETAIL)
    beta = await api.db.executions.submit(agent=AgentName("beta"), input="", trigger=Trigger.API,
                                          created_by="t")
    await api.redis.leases.acquire(api.redis.keys.finalize_lease(beta.id), "host:2:cd", 20_000)
    async with api.client("scoped") as client:
        found = (await client.get("/api/reaper")).json()
    assert [d["agent"] for d in found["last_pass"]["deferred"]] == ["alpha"]
    assert found["last_pass"]["faults"] == []
    assert found["finalize_leases"] == []


async def test_a_detail_from_another_version_shows_no_pass_rather_than_failing(api: Api) -> None:
    await api.redis.reports.save_detail("reaper", {"at_ms": "soon"})
    async with api.client("viewer") as client:
        response = await client.get("/api/reaper")
    assert response.status_code == 200 and response.json()["last_pass"] is None


async def test_the_status_needs_a_token(api: Api) -> None:
    async with api.client(None) as client:
        assert (await client.get("/api/reaper")).status_code == 401


async def test_metrics_count_the_finalize_leases_held_now(api: Api) -> None:
    for eid in ("e1", "e2"):
        await api.redis.leases.acquire(api.redis.keys.finalize_lease(eid), "host:1:ab", 20_000)
    async with api.client(None) as client:
        text = (await client.get("/metrics")).text
    assert "shepherd_finalize_leases_held 2.0" in text
