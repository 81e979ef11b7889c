"""``/api/tokens`` and the first admin token: secrets shown once, stored hashed, revocable."""

from __future__ import annotations

import stat

from shepherd.api.auth import ensure_admin_token
from shepherd.services.tokens import hash_secret
from tests.api.conftest import Api


async def test_a_token_is_shown_once_and_listed_without_its_secret(api: Api) -> None:
    async with api.client("admin") as client:
        created = await client.post(
            "/api/tokens", json={"name": "ci", "role": "operator", "agent": "alpha"}
        )
        listed = await client.get("/api/tokens")
    assert created.status_code == 201
    secret = created.json()["token"]
    assert secret.startswith("shp_")
    assert (created.json()["role"], created.json()["agent"]) == ("operator", "alpha")
    assert secret not in listed.text
    assert hash_secret(secret) not in listed.text
    assert "ci" in [t["name"] for t in listed.json()]


async def test_the_store_keeps_only_the_hash(api: Api) -> None:
    async with api.client("admin") as client:
        secret = (await client.post("/api/tokens", json={"name": "x"})).json()["token"]
    stored = await api.db.tokens.find_by_hash(hash_secret(secret))
    assert stored is not None
    assert secret not in repr(stored)


async def test_a_token_for_an_unknown_agent_or_role_is_refused(api: Api) -> None:
    async with api.client("admin") as client:
        no_agent = await client.post("/api/tokens", json={"name": "x", "agent": "nobody"})
        no_role = await client.post("/api/tokens", json={"name": "x", "role": "root"})
        unknown = await client.delete("/api/tokens/does-not-exist")
    assert no_agent.status_code == 404
    assert no_role.status_code == 422 and "body.role" in no_role.json()["message"]
    assert unknown.status_code == 404


async def test_the_first_start_writes_an_admin_token_readable_only_by_its_owner(api: Api) -> None:
    for token in await api.db.tokens.list():
        await api.db.tokens.revoke(token.id, api.clock.now_ms())
    data_dir = api.ctx.settings.data_dir
    path = await ensure_admin_token(api.db, data_dir, api.clock.now_ms())
    assert path == data_dir / "admin.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text().strip()
    async with api.client(None) as client:
        response = await client.get("/api/tokens", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    assert await ensure_admin_token(api.db, data_dir, api.clock.now_ms()) is None
