"""The role matrix: every route x every role -> allowed or 403; no token -> 401; scope -> 404."""

from __future__ import annotations

from typing import Any

import pytest

from shepherd.services.tokens import Role
from tests.api.conftest import Api
from tests.api.helpers import make_refs

V, OP, A = Role.VIEWER, Role.OPERATOR, Role.ADMIN

# method, path, body, minimum role, needs an unscoped token
ROUTES: list[tuple[str, str, Any, Role, bool]] = [
    ("GET", "/api/agents", None, V, False),
    ("GET", "/api/agents/alpha", None, V, False),
    ("POST", "/api/agents", {"name": "gamma", "url": "http://gamma.test"}, A, True),
    ("PATCH", "/api/agents/alpha", {"max_parallel": 2}, A, False),
    ("DELETE", "/api/agents/beta", None, A, False),
    ("GET", "/api/schedules", None, V, False),
    ("GET", "/api/schedules/{schedule}", None, V, False),
    ("POST", "/api/schedules", {"agent": "alpha", "cron": "* * * * *"}, OP, False),
    ("PATCH", "/api/schedules/{schedule}", {"input": "changed"}, OP, False),
    ("DELETE", "/api/schedules/{schedule}", None, OP, False),
    ("POST", "/api/schedules/{schedule}/enable", None, OP, False),
    ("POST", "/api/schedules/{schedule}/disable", None, OP, False),
    ("POST", "/api/schedules/{schedule}/run", None, OP, False),
    ("GET", "/api/executions", None, V, False),
    ("GET", "/api/executions/{execution}", None, V, False),
    ("POST", "/api/executions", {"agent": "alpha", "input": "hi"}, OP, False),
    ("POST", "/api/executions/{execution}/cancel", None, OP, False),
    ("POST", "/api/executions/{cancelled}/retry", None, OP, False),
    ("POST", "/api/fleet/apply", {"agents": []}, A, True),
    ("POST", "/api/tokens", {"name": "ci", "role": "viewer"}, A, True),
    ("GET", "/api/tokens", None, A, True),
    ("DELETE", "/api/tokens/{token}", None, A, True),
]
ORDER = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)


def _id(route: tuple[str, str, Any, Role, bool]) -> str:
    return f"{route[0]} {route[1]}"


@pytest.mark.parametrize("route", ROUTES, ids=_id)
async def test_each_route_admits_exactly_the_roles_at_or_above_its_minimum(
    api: Api, route: tuple[str, str, Any, Role, bool]
) -> None:
    method, template, body, minimum, _ = route
    path = (await make_refs(api)).fill(template)
    async with api.client(None) as anonymous:
        response = await anonymous.request(method, path, json=body)
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "unauthenticated"
    for role in ORDER:  # least privileged first, so a refusal never follows a side effect
        async with api.client(role.value) as client:
            response = await client.request(method, path, json=body)
        if role.allows(minimum):
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert response.json()["code"] == "forbidden"


@pytest.mark.parametrize("route", [r for r in ROUTES if r[4]], ids=_id)
async def test_fleet_wide_routes_refuse_a_scoped_admin(
    api: Api, route: tuple[str, str, Any, Role, bool]
) -> None:
    method, template, body, _, _ = route
    path = (await make_refs(api)).fill(template)
    async with api.client("scoped-admin") as client:
        response = await client.request(method, path, json=body)
    assert response.status_code == 403
    assert "scoped to alpha" in response.json()["message"]


async def test_an_unknown_or_malformed_token_is_unauthenticated(api: Api) -> None:
    for header in ("Bearer shp_not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer"):
        async with api.client(None) as client:
            response = await client.get("/api/agents", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_revoked_token_stops_working(api: Api) -> None:
    async with api.client("admin") as admin:
        created = (await admin.post("/api/tokens", json={"name": "tmp", "role": "viewer"})).json()
        headers = {"Authorization": f"Bearer {created['token']}"}
        assert (await admin.get("/api/agents", headers=headers)).status_code == 200
        assert (await admin.delete(f"/api/tokens/{created['id']}")).status_code == 204
        assert (await admin.get("/api/agents", headers=headers)).status_code == 401


async def test_health_endpoints_need_no_token(api: Api) -> None:
    async with api.client(None) as client:
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            assert (await client.get(path)).status_code == 200, path
