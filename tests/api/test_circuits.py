"""Circuit breakers over the API: shown on agents, events, fleet listing by state, the admin reset,
creation clearing stale state, and the /metrics families."""

from __future__ import annotations

import pytest

from shepherd.core.circuit import CircuitPolicy, ProbeOutcome, TransitionKind
from shepherd.core.circuit import CircuitState as S
from shepherd.stores.redis.circuits import CircuitStore
from tests.api.conftest import Api

POLICY = CircuitPolicy()


async def open_circuit(store: CircuitStore, agent: str, now_ms: int) -> None:
    for _ in range(POLICY.failure_threshold):
        await store.record_failure(agent, replica="r1", now_ms=now_ms, live_replicas=1,
                                   policy=POLICY, reason="threshold reached; last: refused")


async def park_dormant(store: CircuitStore, agent: str, now_ms: int) -> None:
    await open_circuit(store, agent, now_ms)
    await store.claim_probe(agent, replica="r1", now_ms=now_ms + 30_000, policy=POLICY,
                            reason="probe")
    outcome = ProbeOutcome(TransitionKind.DORMANT, S.DORMANT, 10, now_ms + 3_600_000)
    await store.finish_probe(agent, replica="r1", now_ms=now_ms + 30_000, outcome=outcome,
                             reason="10 failed probes")


async def test_agents_show_their_circuit_state_failures_and_next_probe(api: Api) -> None:
    now = api.clock.now_ms()
    await open_circuit(api.redis.circuits, "alpha", now)
    async with api.client("viewer") as client:
        agents = {a["name"]: a for a in (await client.get("/api/agents")).json()}
        one = (await client.get("/api/agents/alpha")).json()
    alpha, beta = agents["alpha"]["circuit"], agents["beta"]["circuit"]
    assert (alpha["state"], alpha["failures"], alpha["next_probe_at_ms"]) == (
        "open", 3, now + 30_000)
    assert alpha["next_probe_at"].endswith("Z") and "refused" in alpha["reason"]
    assert (beta["state"], beta["failures"], beta["next_probe_at"]) == ("closed", 0, None)
    assert one["circuit"] == alpha


async def test_an_agents_circuit_shows_its_state_changes_newest_first(api: Api) -> None:
    await park_dormant(api.redis.circuits, "alpha", api.clock.now_ms())
    async with api.client("viewer") as client:
        body = (await client.get("/api/agents/alpha/circuit")).json()
    assert body["state"] == "dormant"
    assert [(e["kind"], e["from_state"], e["to_state"]) for e in body["events"]] == [
        ("dormant", "half_open", "dormant"), ("probing", "open", "half_open"),
        ("opened", "closed", "open")]
    assert body["events"][0]["reason"] == "10 failed probes" and body["events"][0]["by"] == "r1"


async def test_the_fleet_circuits_can_be_listed_by_state(api: Api) -> None:
    await park_dormant(api.redis.circuits, "alpha", api.clock.now_ms())
    async with api.client("viewer") as client:
        everything = (await client.get("/api/circuits")).json()
        dormant = (await client.get("/api/circuits", params={"state": "dormant"})).json()
        closed = (await client.get("/api/circuits", params={"state": "closed"})).json()
        bad = await client.get("/api/circuits", params={"state": "sleepy"})
    assert [c["agent"] for c in everything] == ["alpha", "beta"]
    assert [c["agent"] for c in dormant] == ["alpha"]
    assert [c["agent"] for c in closed] == ["beta"]
    assert bad.status_code == 422 and "query.state" in bad.json()["message"]


async def test_an_admin_resets_a_circuit_and_the_event_names_the_token(api: Api) -> None:
    await open_circuit(api.redis.circuits, "alpha", api.clock.now_ms())
    async with api.client("admin") as client:
        reset = await client.post("/api/agents/alpha/circuit/reset")
        again = await client.post("/api/agents/alpha/circuit/reset")
        events = (await client.get("/api/agents/alpha/circuit")).json()["events"]
    assert reset.status_code == 200 and reset.json()["state"] == "closed"
    assert again.status_code == 200 and again.json()["failures"] == 0
    assert events[0]["kind"] == "reset" and events[0]["by"] == "token:admin-token"
    assert len(events) == 2  # a reset of a closed circuit records nothing
    exposition = api.ctx.telemetry.registry.get_sample_value(
        "shepherd_circuit_transitions_total", {"agent": "alpha", "kind": "reset"})
    assert exposition == 1


@pytest.mark.parametrize(
    ("who", "agent", "status"),
    [("operator", "alpha", 403), ("viewer", "alpha", 403), (None, "alpha", 401),
     ("admin", "nobody", 404), ("scoped-admin", "beta", 404), ("scoped-admin", "alpha", 200)],
)
async def test_who_may_reset_which_circuit(api: Api, who: str | None, agent: str,
                                           status: int) -> None:
    async with api.client(who) as client:
        response = await client.post(f"/api/agents/{agent}/circuit/reset")
    assert response.status_code == status
    assert set(response.json()) >= ({"code", "message"} if status != 200 else {"state"})


async def test_creating_an_agent_clears_circuit_state_left_under_its_name(api: Api) -> None:
    now = api.clock.now_ms()
    await open_circuit(api.redis.circuits, "gamma", now)
    await open_circuit(api.redis.circuits, "delta", now)
    manifest = {"agents": [{"name": "delta", "url": "http://delta.test"}]}
    async with api.client("admin") as client:
        created = await client.post("/api/agents", json={"name": "gamma",
                                                         "url": "http://gamma.test"})
        applied = await client.post("/api/fleet/apply", json=manifest)
        events = (await client.get("/api/agents/gamma/circuit")).json()["events"]
    assert created.json()["circuit"]["state"] == "closed"
    assert applied.json()["agents"]["created"] == ["delta"]
    assert (await api.redis.circuits.read("delta")).state is S.CLOSED
    assert events == []


async def test_metrics_export_each_agents_circuit_state_and_failures(api: Api) -> None:
    await open_circuit(api.redis.circuits, "alpha", api.clock.now_ms())
    async with api.client(None) as client:
        text = (await client.get("/metrics")).text
    assert 'shepherd_circuit_state{agent="alpha",state="open"} 1.0' in text
    assert 'shepherd_circuit_state{agent="alpha",state="closed"} 0.0' in text
    assert 'shepherd_circuit_state{agent="beta",state="closed"} 1.0' in text
    assert 'shepherd_circuit_failures{agent="alpha"} 3.0' in text


async def test_moving_an_agent_to_a_new_url_closes_its_circuit(api: Api) -> None:
    """Failures of the old address say nothing of the new one (a runtime restarted elsewhere)."""
    await open_circuit(api.redis.circuits, "alpha", api.clock.now_ms())
    async with api.client("admin") as client:
        same = await client.patch("/api/agents/alpha", json={"max_parallel": 4})
        assert same.json()["circuit"]["state"] == "open"
        moved = await client.patch("/api/agents/alpha", json={"url": "http://127.0.0.1:9/"})
        body = (await client.get("/api/agents/alpha/circuit")).json()
    assert moved.json()["circuit"]["state"] == "closed"
    assert body["events"][0]["reason"] == "the agent moved to a new URL"
