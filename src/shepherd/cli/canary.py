"""``shepherd canary``: run a cycle, list what it found, its status, and the self-test."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shepherd.cli.options import JsonOpt, TokenOpt, UrlOpt, connect
from shepherd.cli.output import emit_json, emit_table

canary = typer.Typer(no_args_is_help=True,
                     help="The canary: invariants across SQL, Redis and the runtimes.")
IdsOpt = Annotated[list[str] | None, typer.Option("--id", help="An invariant id (repeatable).")]


def _violation_rows(found: list[dict[str, Any]]) -> list[list[Any]]:
    return [[v.get("id"), v["invariant_id"], v["severity"], v["entity"], v["message"]]
            for v in found]


@canary.command("run")
def run(ids: IdsOpt = None, url: UrlOpt = None, token_: TokenOpt = None,
        as_json: JsonOpt = False) -> None:
    """Run a cycle now (every invariant, or those given with --id); exit 1 on a violation."""
    cycle = connect(url, token_).post("/api/canary/run-cycle", {"ids": ids} if ids else {})
    if as_json:
        emit_json(cycle)
    else:
        unavailable = ", ".join(cycle["sources_unavailable"]) or "none"
        typer.echo(f"canary: {len(cycle['checked'])} invariant(s) checked in "
                   f"{cycle['duration_ms']:.0f} ms, {len(cycle['violations'])} violation(s), "
                   f"new: {', '.join(cycle['transitions']) or 'none'}; sources unavailable: "
                   f"{unavailable}")
        emit_table("violations", ("id", "invariant", "severity", "entity", "message"),
                   _violation_rows(cycle["violations"]))
    if cycle["violations"]:
        raise typer.Exit(1)


@canary.command("violations")
def violations(
    invariant: Annotated[str | None, typer.Option(help="Only this invariant id.")] = None,
    severity: Annotated[str | None, typer.Option(help="Only this severity.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Violations the canary stored, newest first."""
    params = {k: v for k, v in (("invariant", invariant), ("severity", severity)) if v}
    found = connect(url, token_).get("/api/canary/violations", limit=limit, **params)
    if as_json:
        emit_json(found)
        return
    emit_table("violations", ("id", "invariant", "severity", "entity", "message"),
               _violation_rows(found))


@canary.command("status")
def status(url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Whether the canary runs, and what its last cycle found."""
    found = connect(url, token_).get("/api/canary/status")
    if as_json:
        emit_json(found)
        return
    state = ("off" if not found["enabled"] else "healthy" if found["healthy"] else "STALE")
    last = found.get("last_cycle")
    seen = ("no cycle yet" if last is None else
            f"last cycle {last['cycle_at']} took {last['duration_ms']:.0f} ms, "
            f"{len(last['violations'])} violation(s)")
    typer.echo(f"canary: {state} (every {found['interval_s']:g} s); {seen}; sinks: "
               f"{', '.join(found['sinks']) or 'none (log only)'}")


@canary.command("selftest")
def selftest(url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Provoke each invariant that can be provoked safely on the live fleet, check that it
    fires and clears again; exit 1 if one did not."""
    found = connect(url, token_).post("/api/canary/selftest")
    if as_json:
        emit_json(found)
    else:
        emit_table("self-test", ("id", "provoked", "fired", "cleared", "ms", "why not"), [
            [r["id"], "yes" if r["provoked"] else "no", _yn(r["fired"]), _yn(r["cleared"]),
             r["ms"] if r["provoked"] else "", r["note"]] for r in found["rows"]
        ], keep=("id", "why not"))
        proved = sum(1 for r in found["rows"] if r["provoked"])
        typer.echo(f"canary self-test: {'passed' if found['passed'] else 'FAILED'} "
                   f"({proved} invariant(s) provoked)")
    if not found["passed"]:
        raise typer.Exit(1)


def _yn(value: bool | None) -> str:
    return "" if value is None else "yes" if value else "NO"
