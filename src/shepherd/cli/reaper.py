"""``shepherd reaper status``: the reaper's last pass and the finalize leases held now."""

from __future__ import annotations

from typing import Any

import typer

from shepherd.cli.options import JsonOpt, TokenOpt, UrlOpt, connect
from shepherd.cli.output import emit_json, emit_table

reaper = typer.Typer(no_args_is_help=True, help="The reaper: stuck finalizations and backstop.")

# What the status line counts, tier by tier.
HEADLINE = (("1", "attached"), ("2", "finalized"), ("2", "deferred"), ("2", "result_lost"),
            ("3", "backstopped"))


@reaper.command("status")
def status(url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """When the reaper last ran, what each tier did, which rows it left to a live finalizer,
    and which finalize leases are held now."""
    found = connect(url, token_).get("/api/reaper")
    if as_json:
        emit_json(found)
        return
    last: dict[str, Any] | None = found.get("last_pass")
    leases = found.get("finalize_leases") or []
    typer.echo(describe_pass(last, len(leases), found["settings"]["finalizer_liveness"]))
    if last is not None:
        emit_table("actions", ("tier", "action", "count"), [
            [tier, action, count] for tier, actions in sorted((last.get("counts") or {}).items())
            for action, count in sorted(actions.items())
        ])
        emit_table("deferred to a live finalizer", ("id", "agent", "owner"), [
            [d["execution_id"], d["agent"], d.get("owner")] for d in last.get("deferred") or []
        ])
    emit_table("finalize leases held", ("id", "agent", "owner", "ttl ms"), [
        [lease["execution_id"], lease.get("agent"), lease["owner"], lease["ttl_ms"]]
        for lease in leases
    ])


def describe_pass(last: dict[str, Any] | None, leases: int, liveness: bool) -> str:
    unsafe = "" if liveness else "; FINALIZER LIVENESS CHECK OFF (unsafe)"
    if last is None:
        return f"reaper: no pass yet; {leases} finalize lease(s) held{unsafe}"
    counts = last.get("counts") or {}
    done = ", ".join(f"tier {tier} {counts.get(tier, {}).get(action, 0)} "
                     f"{action.replace('_', ' ')}" for tier, action in HEADLINE)
    kind = "startup pass" if last.get("startup") else "pass"
    return (f"reaper: last {kind} at {last['at']} took {last['duration_ms']:.0f} ms: {done}; "
            f"{leases} finalize lease(s) held{unsafe}")
