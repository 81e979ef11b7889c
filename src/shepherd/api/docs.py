"""The API's own documentation: every error a route can answer, in the OpenAPI document, and
Swagger UI at ``/docs`` served from the package (``web/swagger``), so it works offline.

Errors are documented from what each route is, in one place rather than on every decorator: every
``/api`` route may answer 401 (no or unknown token) and 503 (a store did not answer); 403 where
its role is above viewer or it acts on the whole fleet; 404 where it names a thing (a path
parameter, an agent, a body that refers to one); 409 where it changes state; 413 and 422 where it
takes input. Each is the ``{code, message}`` body of ``errors.py``, which replaces FastAPI's
default 422 schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from shepherd.api.auth import REQUIREMENTS
from shepherd.services.tokens import Role

SWAGGER_DIR = Path(__file__).resolve().parent.parent / "web" / "swagger"
ASSETS = "/docs/assets"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
WITH_BODY = {"POST", "PUT", "PATCH"}
ERRORS = {
    401: "No bearer token, or one that is unknown or revoked.",
    403: "The token's role, or its agent scope, does not allow this.",
    404: "No such thing, or it lies outside the token's agent scope.",
    409: "The current state forbids it: it already exists, has already finished, or has work "
         "in flight.",
    413: "The request body is larger than SHEPHERD_MAX_REQUEST_BODY_BYTES.",
    422: "Invalid input; the message names each field (body.agent, query.limit) and what is "
         "wrong with it.",
    503: "A store (SQL or Redis) or an agent runtime did not answer; try again.",
}


class ErrorBody(BaseModel):
    """Every error the API answers: a stable machine-readable code and a message for people."""

    code: str
    message: str


def install_docs(api: FastAPI, routers: Sequence[APIRouter]) -> None:
    """Serve ``/docs`` from the package and document the errors of ``routers``' routes."""
    api.mount(ASSETS, StaticFiles(directory=SWAGGER_DIR), name="swagger-assets")

    @api.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=api.openapi_url or "/openapi.json", title=f"{api.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            oauth2_redirect_url=None,
        )

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = get_openapi(title=api.title, version=api.version,
                                 description=api.description, routes=api.routes)
            api.openapi_schema = document_errors(schema, routers)
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def document_errors(schema: dict[str, Any], routers: Sequence[APIRouter]) -> dict[str, Any]:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    for route in routes:
        if not route.path.startswith("/api"):
            continue
        for method in route.methods or ():
            operation = schema["paths"].get(route.path, {}).get(method.lower())
            if operation is not None:
                responses = operation.setdefault("responses", {})
                for status in sorted(error_statuses(route, method)):
                    responses[str(status)] = {
                        "description": ERRORS[status],
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                    }
    return schema


def error_statuses(route: APIRoute, method: str) -> set[int]:
    """The error statuses ``route`` may answer to ``method``."""
    statuses = {401, 503}
    role, fleet_wide = _requirement(route)
    if role is not Role.VIEWER or fleet_wide:
        statuses.add(403)
    names_an_agent = any(p.name == "agent" for p in route.dependant.query_params)
    if "{" in route.path or names_an_agent or method in WITH_BODY:
        statuses.add(404)
    if method in WRITES:
        statuses.add(409)
    if method in WITH_BODY:
        statuses |= {413, 422}
    if route.dependant.query_params or route.dependant.path_params:
        statuses.add(422)
    return statuses


def _requirement(route: APIRoute) -> tuple[Role, bool]:
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if dependency.call in REQUIREMENTS:
            return REQUIREMENTS[dependency.call]
        pending.extend(dependency.dependencies)
    return Role.VIEWER, False
