"""``shepherd run``, ``shepherd logs`` and ``shepherd executions``: submit work, follow it and its
output, list, show, cancel and retry it. Every command that takes an execution id also takes a
unique prefix of it."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from shepherd.cli.options import JsonOpt, TokenOpt, UrlOpt, connect
from shepherd.cli.output import (
    duration,
    emit_json,
    emit_record,
    emit_table,
    emit_text,
    local_time,
    short_time,
)
from shepherd.cli.stdin import read_stdin_input
from shepherd.cli.waiting import ACTIVE, EXIT_CODES, follow_output, wait_for_execution

group = typer.Typer(no_args_is_help=True, help="List, show, cancel and retry executions.")

IdArg = Annotated[
    str, typer.Argument(metavar="ID", help="Execution id, or a unique prefix of it.")
]
LS_COLUMNS = ("id", "agent", "status", "error", "try", "queued", "took")
INSTANTS = ("queued_at", "dispatched_at", "started_at", "finished_at", "completed_at")
EXECUTION_FIELDS = (
    "id", "agent", "status", "error_class", "error", "exit_code", "trigger", "attempt",
    "schedule_id", "retry_of", "timeout_s", *INSTANTS, "took", "input_unread", "leftovers",
    "created_by",
)


def run(
    agent: Annotated[str, typer.Argument(metavar="AGENT", help="Agent to run on.")],
    input_: Annotated[str, typer.Argument(metavar="INPUT", help="Input for the child; - = stdin.")],
    wait: Annotated[bool, typer.Option(
        "--wait", help="Wait, show the output, exit with the outcome.")] = False,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Stream the output while it runs; exit with the outcome.")] = False,
    timeout_s: Annotated[int | None, typer.Option(
        "--timeout-s", min=1, help="Stop the run after this many seconds [the agent's timeout].")
    ] = None,
    url: UrlOpt = None,
    token_: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Queue an execution; with --wait or --follow, exit 0 success, 1 failed, 3 otherwise."""
    text = read_stdin_input() if input_ == "-" else input_
    remote = connect(url, token_)
    body: dict[str, Any] = {"agent": agent, "input": text}
    if timeout_s is not None:
        body["timeout_s"] = timeout_s
    row = remote.post("/api/executions", body)
    if (wait or follow) and row["status"] in ACTIVE:
        if follow and not as_json:
            follow_output(remote, row["id"], emit_text)
            row = remote.get(f"/api/executions/{row['id']}")
            _summary(row)
        else:
            row = wait_for_execution(remote, row["id"], quiet=as_json)
            if not as_json:
                _show(row, with_output=True)
    elif not as_json:
        _show(row, with_output=wait or follow)
    if as_json:
        emit_json(row)
    if wait or follow:
        raise typer.Exit(EXIT_CODES.get(row["status"], 3))


def logs(
    execution_id: IdArg,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing the output until the execution ends.")] = False,
    url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Print an execution's output (its tail), live while it runs."""
    remote = connect(url, token_)
    if as_json:
        emit_json(remote.get(f"/api/executions/{execution_id}/output"))
    elif follow:
        follow_output(remote, execution_id, emit_text)
    else:
        emit_text(remote.get(f"/api/executions/{execution_id}/output")["output"])


@group.command("ls")
def executions_ls(
    status: Annotated[str | None, typer.Option(help="Filter by status.")] = None,
    agent: Annotated[str | None, typer.Option(help="Filter by agent.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many to show.")] = 50,
    url: UrlOpt = None,
    token_: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Newest executions first, with full ids and local times."""
    page = connect(url, token_).get("/api/executions", status=status, agent=agent, limit=limit)
    if as_json:
        emit_json(page)
        return
    now_ms = int(time.time() * 1000)
    emit_table("executions (queued in local time)", LS_COLUMNS,
               [_ls_row(item, now_ms) for item in page["items"]])


def _ls_row(item: dict[str, Any], now_ms: int) -> list[Any]:
    return [item["id"], item["agent"], item["status"], _error(item), item["attempt"],
            short_time(item.get("queued_at_ms"), now_ms),
            duration(item.get("started_at_ms"), item.get("finished_at_ms"))]


def _error(item: dict[str, Any]) -> str | None:
    """The error class, with the exit code when that is what failed the run."""
    error_class, code = item.get("error_class"), item.get("exit_code")
    if error_class in (None, "exit_code") and code not in (None, 0):
        return f"exit {code}"
    return str(error_class) if error_class else None


@group.command("show")
def executions_show(
    execution_id: IdArg, url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """One execution with its event timeline and output tail."""
    row = connect(url, token_).get(f"/api/executions/{execution_id}")
    if as_json:
        emit_json(row)
        return
    _show(row, with_output=True)
    emit_table("timeline", ("at", "from", "to", "cause", "actor", "reason"), [
        [local_time(e.get("at_ms"), precise=True), e.get("from_status"), e.get("to_status"),
         e.get("cause"), e.get("actor"), e.get("reason")] for e in row.get("events") or []
    ], keep=("at",))


@group.command("cancel")
def executions_cancel(
    execution_id: IdArg, url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Cancel a queued or running execution."""
    row = connect(url, token_).post(f"/api/executions/{execution_id}/cancel")
    emit_json(row) if as_json else typer.echo(f"{row['id']}: {row['status']}")


@group.command("retry")
def executions_retry(
    execution_id: IdArg, url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Queue a new attempt of a failed or cancelled execution."""
    row = connect(url, token_).post(f"/api/executions/{execution_id}/retry")
    emit_json(row) if as_json else typer.echo(f"{row['id']}: {row['status']} (retry)")


def _show(row: dict[str, Any], with_output: bool = False) -> None:
    shown = dict(row)
    for name in INSTANTS:
        shown[name] = local_time(row.get(f"{name}_ms"))
    shown["took"] = duration(row.get("started_at_ms"), row.get("finished_at_ms"))
    leftovers = ", ".join(f"{x['pid']} ({x['name']})" for x in row.get("leftovers") or [])
    shown["leftovers"] = leftovers or None
    emit_record(f"execution {row['id']}", shown, EXECUTION_FIELDS)
    if with_output and row.get("output_tail"):
        typer.echo("output (tail):")
        emit_text(row["output_tail"] if row["output_tail"].endswith("\n")
                  else row["output_tail"] + "\n")


def _summary(row: dict[str, Any]) -> None:
    """One line after streamed output: how it ended."""
    parts = [f"execution {row['id']}: {row['status']}"]
    if row.get("exit_code") is not None:
        parts.append(f"exit {row['exit_code']}")
    if row.get("error_class"):
        parts.append(str(row["error_class"]))
    took = duration(row.get("started_at_ms"), row.get("finished_at_ms"))
    typer.echo(", ".join(parts) + (f" in {took}" if took else ""), err=True)


