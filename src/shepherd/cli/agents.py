"""``shepherd agents``: the fleet's agents as the control plane sees them."""

from __future__ import annotations

from typing import Annotated

import typer

from shepherd.cli import circuits
from shepherd.cli.options import JsonOpt, TokenOpt, UrlOpt, connect
from shepherd.cli.output import emit_rows

group = typer.Typer(no_args_is_help=True, help="The fleet's agents.")


@group.command("ls")
def agents_ls(url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Agents with their live slot usage, backlog and circuit breaker."""
    columns = ("name", "enabled", "slots_in_use", "max_parallel", "backlog", "circuit",
               "next_probe", "url")
    items = connect(url, token_).get("/api/agents")
    emit_rows("agents", columns,
              items if as_json else [circuits.with_circuit_columns(a) for a in items], as_json)


@group.command("rm")
def agents_rm(
    name: Annotated[str, typer.Argument(metavar="AGENT", help="Agent name.")],
    url: UrlOpt = None, token_: TokenOpt = None,
) -> None:
    """Delete an agent (refused while it has work in flight); under `up`, its runtime stops."""
    connect(url, token_).delete(f"/api/agents/{name}")
    typer.echo(f"deleted agent {name}")


circuits.register(group, connect)
