"""``shepherd fleet``: make a running control plane's fleet match a manifest file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shepherd.cli.options import JsonOpt, TokenOpt, UrlOpt, connect
from shepherd.cli.output import emit_json, emit_table

group = typer.Typer(no_args_is_help=True, help="Apply a fleet manifest.")


@group.command("apply")
def fleet_apply(
    file: Annotated[Path, typer.Argument(help="Fleet manifest (YAML).")],
    url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Make the fleet match FILE; applying it twice changes nothing the second time."""
    from shepherd.manifest.load import load_manifest

    load_manifest(file)  # fail here, naming the file, before anything is sent
    text = file.read_text(encoding="utf-8")
    changes = connect(url, token_).post("/api/fleet/apply", content=text,
                                        content_type="application/yaml")
    if as_json:
        emit_json(changes)
        return
    rows = []
    for kind in ("agents", "schedules"):
        part = changes.get(kind) or {}
        for what in ("created", "updated", "deleted"):
            rows.append([f"{kind} {what}", ", ".join(part.get(what) or []) or "-"])
    emit_table(f"applied {file}", ("change", "names"), rows)
