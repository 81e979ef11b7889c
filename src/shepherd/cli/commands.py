"""The ``shepherd`` command tree. Remote commands talk to the REST API through ``Remote``."""
# The module docstring is internal; what ``shepherd --help`` shows is the callback's docstring.

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shepherd import __version__
from shepherd.cli.output import emit_json, emit_record, emit_rows, emit_table
from shepherd.cli.remote import CliError, Remote, resolve_target
from shepherd.cli.stdin import read_stdin_input
from shepherd.cli.waiting import EXIT_CODES, wait_for_execution
from shepherd.settings import load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True)
executions = typer.Typer(no_args_is_help=True, help="List, show, cancel and retry executions.")
agents = typer.Typer(no_args_is_help=True, help="The fleet's agents.")
fleet = typer.Typer(no_args_is_help=True, help="Apply a fleet manifest.")
token = typer.Typer(no_args_is_help=True, help="API tokens (admin).")
app.add_typer(executions, name="executions")
app.add_typer(agents, name="agents")
app.add_typer(fleet, name="fleet")
app.add_typer(token, name="token")

UrlOpt = Annotated[str | None, typer.Option("--url", help="Control plane URL [SHEPHERD_URL].")]
TokenOpt = Annotated[str | None, typer.Option("--token", help="API token [SHEPHERD_TOKEN].")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

EXECUTION_COLUMNS = ("id", "agent", "status", "trigger", "attempt", "queued_at", "exit_code")
EXECUTION_FIELDS = (
    "id", "agent", "status", "trigger", "attempt", "schedule_id", "retry_of", "timeout_s",
    "queued_at", "dispatched_at", "started_at", "finished_at", "completed_at", "exit_code",
    "error_class", "error", "created_by",
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"shepherd {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True,
                     help="Print the version and exit."),
    ] = False,
) -> None:
    """Shepherd: a self-healing control plane for a fleet of agents."""


def _remote(url: str | None, token_: str | None) -> Remote:
    return Remote(resolve_target(url, token_, load_settings()))


@app.command()
def run(
    agent: Annotated[str, typer.Argument(help="Agent to run on.")],
    input_: Annotated[str, typer.Argument(metavar="INPUT", help="Input for the child; - = stdin.")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait and exit with the outcome.")] = False,
    timeout_s: Annotated[int | None, typer.Option("--timeout-s", min=1)] = None,
    url: UrlOpt = None,
    token_: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Queue an execution; with --wait, follow it and exit 0 success, 1 failed, 3 otherwise."""
    text = read_stdin_input() if input_ == "-" else input_
    remote = _remote(url, token_)
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


@executions.command("ls")
def executions_ls(
    status: Annotated[str | None, typer.Option(help="Filter by status.")] = None,
    agent: Annotated[str | None, typer.Option(help="Filter by agent.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    url: UrlOpt = None,
    token_: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Newest executions first."""
    page = _remote(url, token_).get("/api/executions", status=status, agent=agent, limit=limit)
    if as_json:
        emit_json(page)
        return
    emit_rows("executions", EXECUTION_COLUMNS, page["items"], as_json=False)


@executions.command("show")
def executions_show(
    execution_id: Annotated[str, typer.Argument(metavar="ID")],
    url: UrlOpt = None,
    token_: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One execution with its event timeline and output tail."""
    row = _remote(url, token_).get(f"/api/executions/{execution_id}")
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


@executions.command("cancel")
def executions_cancel(
    execution_id: Annotated[str, typer.Argument(metavar="ID")],
    url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Cancel a queued or running execution."""
    row = _remote(url, token_).post(f"/api/executions/{execution_id}/cancel")
    emit_json(row) if as_json else typer.echo(f"{row['id']}: {row['status']}")


@executions.command("retry")
def executions_retry(
    execution_id: Annotated[str, typer.Argument(metavar="ID")],
    url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Queue a new attempt of a failed or cancelled execution."""
    row = _remote(url, token_).post(f"/api/executions/{execution_id}/retry")
    emit_json(row) if as_json else typer.echo(f"{row['id']}: {row['status']} (retry)")


@agents.command("ls")
def agents_ls(url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Agents with their live slot usage and backlog."""
    columns = ("name", "enabled", "slots_in_use", "max_parallel", "backlog", "url")
    emit_rows("agents", columns, _remote(url, token_).get("/api/agents"), as_json)


@fleet.command("apply")
def fleet_apply(
    file: Annotated[Path, typer.Argument(help="Fleet manifest (YAML).")],
    url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Make the fleet match FILE; applying it twice changes nothing the second time."""
    from shepherd.manifest.load import load_manifest

    load_manifest(file)  # fail here, naming the file, before anything is sent
    text = file.read_text(encoding="utf-8")
    changes = _remote(url, token_).post("/api/fleet/apply", content=text,
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


@token.command("create")
def token_create(
    name: Annotated[str, typer.Argument()],
    role: Annotated[str, typer.Option(help="admin, operator or viewer.")] = "viewer",
    agent: Annotated[str | None, typer.Option(help="Scope the token to one agent.")] = None,
    url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create a token; its secret is printed once."""
    if role not in ("admin", "operator", "viewer"):
        raise CliError(f"--role: {role!r} is not one of admin, operator, viewer", exit_code=2)
    created = _remote(url, token_).post("/api/tokens", {"name": name, "role": role,
                                                        "agent": agent})
    emit_json(created) if as_json else typer.echo(created["token"])


@token.command("ls")
def token_ls(url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Tokens (never their secrets)."""
    columns = ("id", "name", "role", "agent", "created_at", "revoked_at")
    emit_rows("tokens", columns, _remote(url, token_).get("/api/tokens"), as_json)


@token.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID")],
    url: UrlOpt = None, token_: TokenOpt = None,
) -> None:
    """Revoke a token."""
    _remote(url, token_).delete(f"/api/tokens/{token_id}")
    typer.echo(f"revoked {token_id}")


@app.command()
def status(url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Is the control plane up, and how is the fleet doing."""
    remote = _remote(url, token_)
    ready = remote.get("/readyz")
    fleet_agents = remote.get("/api/agents")
    if as_json:
        emit_json({"ready": ready, "agents": fleet_agents})
        return
    typer.echo(f"control plane {remote.target.url}: {ready.get('status', 'unknown')}")
    columns = ("name", "enabled", "slots_in_use", "max_parallel", "backlog")
    emit_rows("agents", columns, fleet_agents, as_json=False)
