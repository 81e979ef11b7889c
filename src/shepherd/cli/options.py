"""Options every client command takes (``--url``, ``--token``, ``--json``) and the client they
build, shared by the command modules."""

from __future__ import annotations

from typing import Annotated

import typer

from shepherd.cli.remote import Remote, resolve_target
from shepherd.settings import load_settings

UrlOpt = Annotated[str | None, typer.Option("--url", help="Control plane URL [SHEPHERD_URL].")]
TokenOpt = Annotated[str | None, typer.Option("--token", help="API token [SHEPHERD_TOKEN].")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def remote_for(url: str | None, token_: str | None) -> Remote:
    return Remote(resolve_target(url, token_, load_settings()))
