"""``/api/outbox``: deliveries and destinations are visible, scoped tokens see their agent's only,
and no response carries a URL."""

from __future__ import annotations

from shepherd.core.outbox import OutboxMessage, SinkKind
from tests.api.conftest import Api

SECRET_URL = "https://hooks.example.test/T000/B000/very-secret"


def hook(agent: str, subject: str) -> OutboxMessage:
    return OutboxMessage(destination=f"completion:{agent}", sink=SinkKind.COMPLETION,
                         topic="completion", subject=subject, idempotency_key=f"{subject}:1",
                         payload={"execution_id": subject}, max_age_s=60)


async def test_deliveries_are_listed_newest_first_and_filtered(api: Api) -> None:
    await api.add_agent("gamma", completion_webhook_url=SECRET_URL)
    await api.db.outbox.enqueue([hook("alpha", "e1"), hook("beta", "e2")])
    async with api.client("viewer") as client:
        everything = (await client.get("/api/outbox")).json()
        pending = (await client.get("/api/outbox", params={"status": "pending"})).json()
        nothing = (await client.get("/api/outbox", params={"topic": "alert"})).json()
        bad = await client.get("/api/outbox", params={"status": "lost"})
    assert [d["subject"] for d in everything] == ["e2", "e1"]
    assert everything[0]["idempotency_key"] == "e2:1" and everything[0]["attempts"] == 0
    assert len(pending) == 2 and nothing == []
    assert bad.status_code == 422
    assert SECRET_URL not in str(everything)


async def test_a_scoped_token_sees_only_its_agents_deliveries(api: Api) -> None:
    await api.db.outbox.enqueue([hook("alpha", "e1"), hook("beta", "e2")])
    async with api.client("scoped") as client:
        rows = (await client.get("/api/outbox")).json()
        destinations = await client.get("/api/outbox/destinations")
    assert [d["subject"] for d in rows] == ["e1"]
    assert destinations.status_code == 200


async def test_destinations_answer_for_a_viewer(api: Api) -> None:
    async with api.client("viewer") as client:
        response = await client.get("/api/outbox/destinations")
    assert (response.status_code, response.json()) == (200, [])
