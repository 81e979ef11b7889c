"""``shepherd run`` and ``shepherd executions``: submit work, follow it, list, show, cancel and
retry it."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from shepherd.cli.options import JsonOpt, TokenOpt, UrlOpt, connect
from shepherd.cli.output import emit_json, emit_record, emit_rows, emit_table
from shepherd.cli.waiting import EXIT_CODES, wait_for_execution

group = typer.Typer(no_args_is_help=True, help="List, show, cancel and retry executions.")

IdArg = Annotated[str, typer.Argument(metavar="ID", help="Execution id.")]
EXECUTION_COLUMNS = ("id", "agent", "status", "trigger", "attempt", "queued_at", "exit_code")
EXECUTION_FIELDS = (
    "id", "agent", "status", "trigger", "attempt", "schedule_id", "retry_of", "timeout_s",
    "queued_at", "dispatched_at", "started_at", "finished_at", "completed_at", "exit_code",
    "error_class", "error", "created_by",
)


def run(
    agent: Annotated[str, typer.Argument(help="Agent to run on.")],
    input_: Annotated[str, typer.Argument(metavar="INPUT", help="Input for the child; - = stdin.")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait and exit with the outcome.")] = False,
    timeout_s: Annotated[int | None, typer.Option(
        "--timeout-s", min=1, help="Stop the run after this many seconds [the agent's timeout].")
    ] = None,
    url: UrlOpt = None,
    token_: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Queue an execution; with --wait, follow it and exit 0 success, 1 failed, 3 otherwise."""
    text = sys.stdin.read() if input_ == "-" else input_
    remote = connect(url, token_)
    body: dict[str, Any] = {"agent": agent, "input": text}
    if timeout_s is not None:
        body["timeout_s"] = timeout_s
    row = remote.post("/api/executions", body)
    if wait and row["status"] in ("queued", "running", "finalizing"):
        row = wait_for_execution(remote, row["id"], quiet=as_json)
    if as_json:
        emit_json(row)
    else:
        emit_record(f"execution {row['id']}", row, EXECUTION_FIELDS)
    if wait:
        raise typer.Exit(EXIT_CODES.get(row["status"], 3))


@group.command("ls")
def executions_ls(
    status: Annotated[str | None, typer.Option(help="Filter by status.")] = None,
    agent: Annotated[str | None, typer.Option(help="Filter by agent.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many to show.")] = 50,
    url: UrlOpt = None,
    token_: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Newest executions first."""
    page = connect(url, token_).get("/api/executions", status=status, agent=agent, limit=limit)
    if as_json:
        emit_json(page)
        return
    emit_rows("executions", EXECUTION_COLUMNS, page["items"], as_json=False)


@group.command("show")
def executions_show(
    execution_id: IdArg,
    url: UrlOpt = None,
    token_: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One execution with its event timeline and output tail."""
    row = connect(url, token_).get(f"/api/executions/{execution_id}")
    if as_json:
        emit_json(row)
        return
    emit_record(f"execution {execution_id}", row, EXECUTION_FIELDS)
    events = row.get("events") or []
    emit_table("timeline", ("at", "from", "to", "cause", "actor", "reason"), [
        [e.get("at"), e.get("from_status"), e.get("to_status"), e.get("cause"), e.get("actor"),
         e.get("reason")] for e in events
    ])
    if row.get("output_tail"):
        typer.echo(row["output_tail"])


@group.command("cancel")
def executions_cancel(
    execution_id: IdArg,
    url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Cancel a queued or running execution."""
    row = connect(url, token_).post(f"/api/executions/{execution_id}/cancel")
    emit_json(row) if as_json else typer.echo(f"{row['id']}: {row['status']}")


@group.command("retry")
def executions_retry(
    execution_id: IdArg,
    url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Queue a new attempt of a failed or cancelled execution."""
    row = connect(url, token_).post(f"/api/executions/{execution_id}/retry")
    emit_json(row) if as_json else typer.echo(f"{row['id']}: {row['status']} (retry)")
