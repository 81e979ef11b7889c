"""``/api/fleet/apply``: make the fleet match a manifest, sent as JSON or as YAML text.

Idempotent: applying the same manifest twice reports no change the second time. A manifest that
does not validate is a 422 naming the path inside it (``agents[2].max_parallel``) and changes
nothing. ``?dry_run=true`` reports the changes without making them. Under ``shepherd up`` the
local runtimes follow the applied agents (``hosting.py``) and the response says how; under
``serve`` it says which agents with a command nothing here will run.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from shepherd.api.auth import FleetAdmin
from shepherd.api.context import Ctx
from shepherd.api.hosting import unhosted_notes
from shepherd.api.views import FleetChangesView
from shepherd.errors import ManifestError
from shepherd.manifest.load import parse_manifest, validate_manifest
from shepherd.manifest.schema import Manifest
from shepherd.services.fleet import apply_manifest

router = APIRouter(prefix="/api/fleet", tags=["fleet"])

SOURCE = "manifest"
# The manifest's JSON schema documents both encodings of the same document.
_MANIFEST_SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": True}
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")


def _request_body_doc() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _MANIFEST_SCHEMA},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    }


async def read_manifest(request: Request) -> Manifest:
    """The body as a validated manifest; YAML when the content type says so, else JSON."""
    raw = await request.body()
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{SOURCE}: the body is not UTF-8 text") from exc
    if media_type in _YAML_TYPES:
        return parse_manifest(text, source=SOURCE)
    try:
        data = json.loads(text) if text.strip() else None
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"{SOURCE}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "send YAML with Content-Type: application/yaml"
        ) from exc
    return validate_manifest(data, source=SOURCE)


@router.post("/apply", response_model=FleetChangesView, openapi_extra=_request_body_doc(),
             summary="Make agents and schedules match a manifest (or, dry, say what would change)")
async def apply(
    ctx: Ctx, principal: FleetAdmin, request: Request,
    dry_run: Annotated[bool, Query(description="Report the changes; write nothing.")] = False,
) -> FleetChangesView:
    manifest = await read_manifest(request)
    changes = await apply_manifest(ctx.db, manifest, ctx.clock.now_ms(), ctx.redis.circuits,
                                   dry_run=dry_run)
    if dry_run:
        return FleetChangesView.of(changes, dry_run=True)
    if ctx.local_runtimes is None:
        return FleetChangesView.of(changes, notes=unhosted_notes(manifest))
    runtimes = await ctx.local_runtimes.apply(manifest)
    notes = [f"agent {name}: {why}" for name, why in {**runtimes.pending,
                                                       **runtimes.failed}.items()]
    return FleetChangesView.of(changes, runtimes=runtimes, notes=notes)
