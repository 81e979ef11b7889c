"""The API's front door: the token is checked before the body is read (401, never a 422 for a body
nobody was allowed to send), and bodies are capped (413 with the limit in the message), both for a
declared length and for a body that streams in without one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import httpx
import pytest

from shepherd.api.app import create_api
from shepherd.settings import Settings
from tests.api.conftest import Api

LIMIT = 4096


@pytest.fixture
def capped(api: Api) -> Callable[[str | None], httpx.AsyncClient]:
    settings = Settings(data_dir=api.ctx.settings.data_dir, max_request_body_bytes=LIMIT)
    app = create_api(replace(api.ctx, settings=settings))

    def client(who: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {api.tokens[who]}"} if who else {}
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://shepherd.test", headers=headers)

    return client


@pytest.mark.parametrize("who", [None, "bogus"])
async def test_a_request_without_a_valid_token_is_401_before_its_body_is_parsed(
    api: Api, who: str | None
) -> None:
    api.tokens["bogus"] = "shp_not_a_token"
    async with api.client(who) as client:
        response = await client.post("/api/executions", content=b"{not json",
                                     headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_declared_body_over_the_limit_is_413_naming_the_limit(capped) -> None:  # type: ignore[no-untyped-def]
    async with capped("operator") as client:
        response = await client.post("/api/executions",
                                     json={"agent": "alpha", "input": "x" * (LIMIT * 2)})
    assert response.status_code == 413
    assert response.json() == {
        "code": "payload_too_large",
        "message": f"the request body is larger than the limit of {LIMIT} bytes "
                   "(SHEPHERD_MAX_REQUEST_BODY_BYTES)",
    }


async def test_a_streamed_body_over_the_limit_is_413_without_reading_the_rest(capped) -> None:  # type: ignore[no-untyped-def]
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):
            sent += 1024
            yield b"x" * 1024

    async with capped("operator") as client:
        response = await client.post("/api/executions", content=chunks(),
                                     headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert sent < 1000 * 1024  # refused early, not read to the end


async def test_a_body_within_the_limit_reaches_the_route_unchanged(capped) -> None:  # type: ignore[no-untyped-def]
    async with capped("operator") as client:
        response = await client.post("/api/executions", json={"agent": "alpha", "input": "hi"})
    assert response.status_code == 201 and response.json()["input"] == "hi"


async def test_a_valid_token_with_a_bad_body_is_still_a_422_naming_the_field(api: Api) -> None:
    async with api.client("operator") as client:
        response = await client.post("/api/executions", json={"agent": "alpha", "bogus": 1})
    assert response.status_code == 422 and "body.bogus" in response.json()["message"]
