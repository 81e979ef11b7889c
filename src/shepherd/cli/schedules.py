"""``shepherd schedules``: the fleet's cron schedules: list, show, add, enable, disable, run now,
remove. A schedule is named by its id, a unique prefix of its id, or its name (the manifest's
``name``, else ``<agent>-<index>``)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from shepherd.cli.options import JsonOpt, TokenOpt, UrlOpt, connect
from shepherd.cli.output import emit_json, emit_record, emit_table, local_time, short_time
from shepherd.cli.remote import CliError, Remote

group = typer.Typer(no_args_is_help=True, help="Cron schedules: list, add, enable, run now.")

RefArg = Annotated[str, typer.Argument(
    metavar="SCHEDULE", help="Schedule name, id, or a unique prefix of its id.")]
LS_COLUMNS = ("id", "name", "agent", "cron", "on", "next run")
FIELDS = ("id", "name", "agent", "cron", "timezone", "overlap", "enabled", "timeout_s", "input",
          "next_run", "last_run", "created")


@group.command("ls")
def schedules_ls(
    agent: Annotated[str | None, typer.Option(help="Only this agent's schedules.")] = None,
    url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Schedules, whether they are on, and their next run (local time)."""
    rows = connect(url, token_).get("/api/schedules", agent=agent)
    if as_json:
        emit_json(rows)
        return
    now_ms = int(time.time() * 1000)
    emit_table("schedules", LS_COLUMNS, [
        [s["id"], s.get("name"), s["agent"], s["cron"], "yes" if s["enabled"] else "no",
         short_time(s.get("next_run_at_ms"), now_ms) if s["enabled"] else None] for s in rows
    ])


@group.command("show")
def schedules_show(
    ref: RefArg, url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """One schedule."""
    remote = connect(url, token_)
    _emit(remote.get(f"/api/schedules/{resolve(remote, ref)}"), as_json)


@group.command("add")
def schedules_add(
    agent: Annotated[str, typer.Argument(metavar="AGENT", help="Agent to run on.")],
    cron: Annotated[str, typer.Argument(metavar="CRON", help='Cron expression, e.g. "0 2 * * *".')],
    input_: Annotated[str, typer.Option("--input", help="Input for each run.")] = "",
    name: Annotated[str | None, typer.Option(help="A name to refer to it by.")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone of the cron.")] = "UTC",
    overlap: Annotated[str, typer.Option(
        help="While a run is in flight: skip the next one, or queue it.")] = "skip",
    timeout_s: Annotated[int | None, typer.Option(
        "--timeout-s", min=1, help="Stop each run after this many seconds.")] = None,
    url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Add a schedule; it is armed for its next tick."""
    if overlap not in ("skip", "queue"):
        raise CliError(f"--overlap: {overlap!r} is not one of skip, queue", exit_code=2)
    body: dict[str, Any] = {"agent": agent, "cron": cron, "input": input_, "timezone": timezone,
                            "overlap": overlap, "name": name, "timeout_s": timeout_s}
    _emit(connect(url, token_).post("/api/schedules", body), as_json)


@group.command("enable")
def schedules_enable(
    ref: RefArg, url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Enable a schedule (armed for its next tick after now)."""
    remote = connect(url, token_)
    _done(remote.post(f"/api/schedules/{resolve(remote, ref)}/enable"), "enabled", as_json)


@group.command("disable")
def schedules_disable(
    ref: RefArg, url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Disable a schedule; it keeps its settings and fires nothing."""
    remote = connect(url, token_)
    _done(remote.post(f"/api/schedules/{resolve(remote, ref)}/disable"), "disabled", as_json)


@group.command("run-now")
def schedules_run_now(
    ref: RefArg, url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Run a schedule now, as its next tick would (queued, or skipped with the reason)."""
    remote = connect(url, token_)
    row = remote.post(f"/api/schedules/{resolve(remote, ref)}/run")
    if as_json:
        emit_json(row)
        return
    reason = f" ({row['error']})" if row.get("error") else ""
    typer.echo(f"{row['id']}: {row['status']}{reason}")


@group.command("rm")
def schedules_rm(ref: RefArg, url: UrlOpt = None, token_: TokenOpt = None) -> None:
    """Remove a schedule (its past executions stay)."""
    remote = connect(url, token_)
    schedule_id = resolve(remote, ref)
    remote.delete(f"/api/schedules/{schedule_id}")
    typer.echo(f"removed {schedule_id}")


def resolve(remote: Remote, ref: str) -> str:
    """The id of the schedule ``ref`` names: an id, a unique id prefix, or a name."""
    if ref.startswith("sch_") and len(ref) == 20:
        return ref
    schedules = remote.get("/api/schedules")
    named = [s for s in schedules if s.get("name") == ref]
    found = named or [s for s in schedules if s["id"].startswith(ref)]
    if not found:
        raise CliError(f"no schedule named {ref!r} or with an id starting with it "
                       "(shepherd schedules ls)")
    if len(found) > 1:
        shown = ", ".join(f"{s['id']} ({s.get('name') or s['agent']})" for s in found[:3])
        raise CliError(f"{ref!r} names more than one schedule: {shown}; give its id")
    return str(found[0]["id"])


def _emit(row: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(row)
        return
    shown = dict(row, next_run=local_time(row.get("next_run_at_ms")),
                 last_run=local_time(row.get("last_run_at_ms")),
                 created=local_time(row.get("created_at_ms")))
    emit_record(f"schedule {row['id']}", shown, FIELDS)


def _done(row: dict[str, Any], what: str, as_json: bool) -> None:
    if as_json:
        emit_json(row)
    else:
        next_run = local_time(row.get("next_run_at_ms"))
        typer.echo(f"{row['id']}: {what}" + (f", next run {next_run}" if row["enabled"] else ""))
