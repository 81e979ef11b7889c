"""``shepherd token``: API tokens (an unscoped admin token is needed)."""

from __future__ import annotations

from typing import Annotated

import typer

from shepherd.cli.options import JsonOpt, TokenOpt, UrlOpt, connect
from shepherd.cli.output import emit_json, emit_rows
from shepherd.cli.remote import CliError

group = typer.Typer(no_args_is_help=True, help="API tokens (admin).")


@group.command("create")
def token_create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A name to recognise the token by.")],
    role: Annotated[str, typer.Option(help="admin, operator or viewer.")] = "viewer",
    agent: Annotated[str | None, typer.Option(help="Scope the token to one agent.")] = None,
    url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create a token; its secret is printed once."""
    if role not in ("admin", "operator", "viewer"):
        raise CliError(f"--role: {role!r} is not one of admin, operator, viewer", exit_code=2)
    created = connect(url, token_).post("/api/tokens", {"name": name, "role": role,
                                                        "agent": agent})
    emit_json(created) if as_json else typer.echo(created["token"])


@group.command("ls")
def token_ls(url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Tokens (never their secrets)."""
    columns = ("id", "name", "role", "agent", "created_at", "revoked_at")
    emit_rows("tokens", columns, connect(url, token_).get("/api/tokens"), as_json)


@group.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="Token id (shepherd token ls).")],
    url: UrlOpt = None, token_: TokenOpt = None,
) -> None:
    """Revoke a token."""
    connect(url, token_).delete(f"/api/tokens/{token_id}")
    typer.echo(f"revoked {token_id}")
