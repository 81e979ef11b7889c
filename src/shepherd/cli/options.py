"""What every remote command shares: the ``--url``/``--token``/``--json`` options and the client
they resolve to. Commands take these as parameters so each one documents them in its own help."""

from __future__ import annotations

from typing import Annotated

import typer

from shepherd.cli.remote import CliError, Remote
from shepherd.cli.target import TargetError, resolve_target

UrlOpt = Annotated[str | None, typer.Option("--url", help="Control plane URL [SHEPHERD_URL].")]
TokenOpt = Annotated[str | None, typer.Option("--token", help="API token [SHEPHERD_TOKEN].")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def connect(url: str | None, token: str | None) -> Remote:
    """The API client for this call: flags, else environment, else the local control plane."""
    try:
        return Remote(resolve_target(url, token))
    except TargetError as exc:
        raise CliError(str(exc), exit_code=2) from exc
