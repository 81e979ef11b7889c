"""``shepherd alerts``: open incidents and undelivered alerts, and the configured sinks (admin).

Talks to ``/api/alerts`` only. ``ls`` prints the open incidents, then the sinks' states and the
deliveries still waiting or given up; ``--json`` prints the API's answer as it came.
"""

from __future__ import annotations

import typer

from shepherd.cli.options import JsonOpt, TokenOpt, UrlOpt, connect
from shepherd.cli.output import emit_json, emit_rows, emit_table

alerts = typer.Typer(no_args_is_help=True, help="Alert incidents, deliveries and sinks.")

INCIDENT_COLUMNS = ("source", "kind", "entity", "severity", "incident", "since", "summary")
DELIVERY_COLUMNS = ("id", "destination", "subject", "status", "attempts", "last_error",
                    "created_at")
SINK_COLUMNS = ("name", "kind", "state", "reason")


@alerts.command("ls")
def alerts_ls(url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Open incidents, sink states, and alerts not delivered (yet)."""
    found = connect(url, token_).get("/api/alerts")
    if as_json:
        emit_json(found)
        return
    emit_rows("open incidents", INCIDENT_COLUMNS, found["open"], as_json=False)
    if found["sinks"]:
        emit_rows("sinks", SINK_COLUMNS, found["sinks"], as_json=False)
    else:
        typer.echo("no alert sink configured: decisions are logged and kept, nothing is sent")
    if found["undelivered"]:
        emit_rows("undelivered", DELIVERY_COLUMNS, found["undelivered"], as_json=False)


@alerts.command("sinks")
def alerts_sinks(url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Configured sinks with their URLs masked (admin)."""
    sinks = connect(url, token_).get("/api/alerts/sinks")
    if as_json:
        emit_json(sinks)
        return
    emit_table("alert sinks", (*SINK_COLUMNS, "url"),
               [[s.get(c) for c in (*SINK_COLUMNS, "url")] for s in sinks])
