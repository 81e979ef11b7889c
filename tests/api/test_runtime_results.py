"""What the API says about a run's result beyond its exit code (``input_unread``, ``leftovers``)
and about an agent's ``require_input_read``."""

from __future__ import annotations

from shepherd.core.models import Leftover, TransitionFields
from shepherd.core.status import Cause, ExecutionStatus
from tests.api.conftest import Api
from tests.api.helpers import start_running, submit_on


async def test_an_agent_requires_its_input_read_only_when_asked(api: Api) -> None:
    body = {"name": "strict", "url": "http://strict.test:9000", "require_input_read": True}
    async with api.client("admin") as client:
        created = await client.post("/api/agents", json=body)
        default = await client.get("/api/agents/alpha")
        patched = await client.patch("/api/agents/strict", json={"require_input_read": False})
        nulled = await client.patch("/api/agents/strict", json={"require_input_read": None})
    assert (created.status_code, created.json()["require_input_read"]) == (201, True)
    assert default.json()["require_input_read"] is False
    assert patched.json()["require_input_read"] is False
    assert nulled.status_code == 422 and "require_input_read" in nulled.json()["message"]


async def test_an_execution_shows_its_unread_input_and_leftovers_once_stored(api: Api) -> None:
    row = await submit_on(api, "alpha")
    async with api.client("viewer") as client:
        queued = (await client.get(f"/api/executions/{row.id}")).json()
    assert (queued["input_unread"], queued["leftovers"]) == (None, [])
    await start_running(api, row.id)
    now = api.clock.now_ms()
    assert await api.db.executions.transition(row.id, ExecutionStatus.FINALIZING,
                                              Cause.CHILD_EXITED, actor="t", now_ms=now)
    assert await api.db.executions.transition(
        row.id, ExecutionStatus.SUCCESS, Cause.FINALIZED, actor="t", now_ms=now,
        fields=TransitionFields(exit_code=0, input_unread=True,
                                leftovers=(Leftover(4242, "sleep"),)),
    )
    async with api.client("viewer") as client:
        shown = (await client.get(f"/api/executions/{row.id}")).json()
        listed = (await client.get("/api/executions")).json()["items"]
    assert (shown["input_unread"], shown["leftovers"]) == (True, [{"pid": 4242, "name": "sleep"}])
    assert [r["leftovers"] for r in listed if r["id"] == row.id] == [shown["leftovers"]]
