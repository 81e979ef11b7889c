"""``GET /api/watchdog`` and the retry policy fields of agents and schedules."""

from __future__ import annotations

from shepherd.api.instants import to_iso
from tests.api.conftest import Api

DETAIL = {
    "at_ms": 1_700_000_000_000, "scope": "full", "systemic": False, "duration_ms": 12.5,
    "agents": ["alpha", "beta"], "requests": ["alpha"],
    "counts": {"orphaned": 2, "timed_out": 0, "retried": 1},
    "skipped": [
        {"agent": "alpha", "reach": "unreachable", "reason": "ConnectError",
         "unreachable_since_ms": 1_699_999_990_000},
        {"agent": "beta", "reach": "no_runtime", "reason": "no runtime URL",
         "unreachable_since_ms": None},
    ],
}


async def test_before_any_cycle_the_status_says_so_with_the_settings(api: Api) -> None:
    async with api.client("viewer") as client:
        found = (await client.get("/api/watchdog")).json()
    assert found["last_cycle"] is None and found["unhealthy_agents"] == []
    assert found["settings"] == {"interval_s": 15.0, "agent_lost_after_s": 60.0,
                                 "dispatch_grace_s": 15.0, "timeout_slack_s": 30.0,
                                 "probe_timeout_s": 5.0, "handover_grace_s": 5.0}


async def test_the_status_shows_the_last_cycle_and_the_unhealthy_agents(api: Api) -> None:
    await api.redis.reports.save_detail("watchdog", DETAIL)
    await api.redis.health.mark_unreachable("alpha", 1_699_999_990_000)
    await api.redis.health.fence("alpha", 1_700_000_050_000)
    async with api.client("viewer") as client:
        found = (await client.get("/api/watchdog")).json()
    last = found["last_cycle"]
    assert (last["at"], last["scope"], last["duration_ms"], last["systemic"]) == (
        to_iso(1_700_000_000_000), "full", 12.5, False)
    assert last["counts"] == {"orphaned": 2, "timed_out": 0, "retried": 1}
    assert [(s["agent"], s["reach"]) for s in last["skipped"]] == [
        ("alpha", "unreachable"), ("beta", "no_runtime")]
    assert last["skipped"][0]["unreachable_since"] == to_iso(1_699_999_990_000)
    assert found["unhealthy_agents"] == [{
        "name": "alpha", "unreachable_since": to_iso(1_699_999_990_000),
        "unreachable_since_ms": 1_699_999_990_000, "fenced": True,
        "lost_at": to_iso(1_700_000_050_000), "lost_at_ms": 1_700_000_050_000,
    }]


async def test_a_scoped_token_sees_only_its_agent(api: Api) -> None:
    await api.redis.reports.save_detail("watchdog", DETAIL)
    await api.redis.health.mark_unreachable("beta", 1)
    async with api.client("scoped") as client:
        found = (await client.get("/api/watchdog")).json()
    assert [s["agent"] for s in found["last_cycle"]["skipped"]] == ["alpha"]
    assert found["unhealthy_agents"] == []


async def test_the_status_needs_a_token(api: Api) -> None:
    async with api.client(None) as client:
        assert (await client.get("/api/watchdog")).status_code == 401


async def test_agents_and_schedules_carry_a_retry_policy(api: Api) -> None:
    async with api.client("admin") as client:
        made = await client.post("/api/agents", json={"name": "gamma", "max_attempts": 3,
                                                       "retry_on_failure": True})
        assert made.status_code == 201, made.text
        assert (made.json()["max_attempts"], made.json()["retry_on_failure"]) == (3, True)
        patched = await client.patch("/api/agents/gamma", json={"max_attempts": 1})
        assert patched.json()["max_attempts"] == 1
        too_many = await client.post("/api/agents", json={"name": "delta", "max_attempts": 21})
        assert too_many.status_code == 422 and "max_attempts" in too_many.json()["message"]
        schedule = await client.post("/api/schedules", json={
            "agent": "gamma", "cron": "* * * * *", "max_attempts": 4})
        assert schedule.status_code == 201, schedule.text
        assert (schedule.json()["max_attempts"], schedule.json()["retry_on_failure"]) == (4, None)
        cleared = await client.patch(f"/api/schedules/{schedule.json()['id']}",
                                     json={"max_attempts": None})
        assert cleared.json()["max_attempts"] is None
        run = await client.post(f"/api/schedules/{schedule.json()['id']}/run")
    row = run.json()
    assert (row["max_attempts"], row["retry_on_failure"], row["not_before"]) == (1, True, None)
