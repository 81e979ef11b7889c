"""``shepherd fleet``: make a running control plane's fleet match a manifest file, or see first
what that would change."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shepherd.cli.options import JsonOpt, TokenOpt, UrlOpt, connect
from shepherd.cli.output import console, emit_json

group = typer.Typer(no_args_is_help=True, help="Apply a fleet manifest.")

RUNTIME_CHANGES = ("started", "restarted", "adopted", "stopped")


@group.command("apply")
def fleet_apply(
    file: Annotated[Path, typer.Argument(metavar="MANIFEST", help="Fleet manifest (YAML).")],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show what would change; change nothing.")] = False,
    url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Make the fleet match FILE; applying it twice changes nothing the second time."""
    from shepherd.manifest.load import load_manifest

    load_manifest(file)  # fail here, naming the file, before anything is sent
    text = file.read_text(encoding="utf-8")
    path = "/api/fleet/apply?dry_run=true" if dry_run else "/api/fleet/apply"
    changes = connect(url, token_).post(path, content=text, content_type="application/yaml")
    if as_json:
        emit_json(changes)
        return
    for line in describe(changes, str(file)):
        console.print(line, highlight=False, markup=False)


def describe(changes: dict[str, Any], source: str) -> list[str]:
    """The changes as a person reads a diff: ``+`` created, ``~`` updated, ``-`` deleted."""
    dry = changes.get("dry_run", False)
    lines = [f"{source}: {'would change' if dry else 'applied'}"
             + ("" if changes.get("changed") else " (no change)")]
    for kind in ("agents", "schedules"):
        part = changes.get(kind) or {}
        lines += [f"  + {kind[:-1]} {name}" for name in part.get("created", [])]
        for name in part.get("updated", []):
            lines.append(f"  ~ {kind[:-1]} {name}")
            lines += [f"      {detail}" for detail in (part.get("details") or {}).get(name, [])]
        lines += [f"  - {kind[:-1]} {name}" for name in part.get("deleted", [])]
    if changes.get("unmanaged"):
        lines.append(f"  not in the file, left as they are: {', '.join(changes['unmanaged'])}")
    runtimes = changes.get("runtimes") or {}
    for what in RUNTIME_CHANGES:
        if runtimes.get(what):
            lines.append(f"  runtimes {what}: {', '.join(runtimes[what])}")
    lines += [f"  note: {note}" for note in changes.get("notes") or []]
    return lines
