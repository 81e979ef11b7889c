"""The API documents its real errors (``{code, message}``, 401/403/404/409/413/422 where they can
happen) and serves ``/docs`` from the package, so it works without network access."""

from __future__ import annotations

import json
import re

from tests.api.conftest import Api

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


async def _schema(api: Api) -> dict:  # type: ignore[type-arg]
    async with api.client(None) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


async def test_every_api_route_documents_its_errors_as_code_and_message(api: Api) -> None:
    schema = await _schema(api)
    assert schema["components"]["schemas"]["ErrorBody"]["required"] == ["code", "message"]
    for path, operations in schema["paths"].items():
        if not path.startswith("/api"):
            continue
        for method, operation in operations.items():
            for status in ("401", "503"):
                content = operation["responses"][status]["content"]["application/json"]
                assert content["schema"] == ERROR_REF, (method, path, status)


async def test_submitting_work_documents_each_error_it_can_answer(api: Api) -> None:
    responses = (await _schema(api))["paths"]["/api/executions"]["post"]["responses"]
    for status in ("401", "403", "404", "409", "413", "422"):
        assert responses[status]["content"]["application/json"]["schema"] == ERROR_REF
    assert "SHEPHERD_MAX_REQUEST_BODY_BYTES" in responses["413"]["description"]


async def test_fastapis_default_validation_error_shape_is_not_documented(api: Api) -> None:
    text = json.dumps(await _schema(api))
    assert "HTTPValidationError" not in text and "ValidationError" not in text


async def test_docs_load_every_asset_from_this_server(api: Api) -> None:
    async with api.client(None) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        links = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        urls = re.findall(r"""url: ['"]([^'"]+)['"]""", page.text)
        assert links and all(link.startswith("/") for link in links + urls), links + urls
        for link in links:
            asset = await client.get(link)
            assert asset.status_code == 200 and len(asset.content) > 500, link
