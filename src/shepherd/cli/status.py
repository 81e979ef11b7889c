"""``shepherd status``: is the control plane up, and how is the fleet doing."""

from __future__ import annotations

import typer

from shepherd.cli.options import JsonOpt, TokenOpt, UrlOpt, connect
from shepherd.cli.output import emit_json, emit_rows


def status(url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Is the control plane up, and how is the fleet doing."""
    remote = connect(url, token_)
    ready = remote.get("/readyz")
    fleet_agents = remote.get("/api/agents")
    if as_json:
        emit_json({"ready": ready, "agents": fleet_agents})
        return
    typer.echo(f"control plane {remote.target.url}: {ready.get('status', 'unknown')}")
    columns = ("name", "enabled", "slots_in_use", "max_parallel", "backlog")
    emit_rows("agents", columns, fleet_agents, as_json=False)
