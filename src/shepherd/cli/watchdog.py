"""``shepherd watchdog status``: the watchdog's last cycle and the fleet's unhealthy agents."""

from __future__ import annotations

from typing import Any

import typer

from shepherd.cli.options import JsonOpt, TokenOpt, UrlOpt, connect
from shepherd.cli.output import emit_json, emit_table

watchdog = typer.Typer(no_args_is_help=True, help="The watchdog reconciler.")

# The counts the status line leads with; the table shows every count.
HEADLINE = ("timed_out", "orphaned", "lost", "handed_over", "strays", "retried")


@watchdog.command("status")
def status(url: UrlOpt = None, token_: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """When the watchdog last ran, what it did, and which agents it skipped or fenced."""
    found = connect(url, token_).get("/api/watchdog")
    if as_json:
        emit_json(found)
        return
    last: dict[str, Any] | None = found.get("last_cycle")
    typer.echo(describe_cycle(last))
    if last is not None:
        counts = last.get("counts") or {}
        emit_table("actions", ("action", "count"), sorted(counts.items()))
        emit_table("skipped agents", ("agent", "reach", "unreachable since", "reason"), [
            [s["agent"], s["reach"], s.get("unreachable_since"), s["reason"]]
            for s in last.get("skipped") or []
        ])
    emit_table("unhealthy agents", ("agent", "unreachable since", "fenced", "lost at"), [
        [a["name"], a.get("unreachable_since"), "yes" if a["fenced"] else "no", a.get("lost_at")]
        for a in found.get("unhealthy_agents") or []
    ])


def describe_cycle(last: dict[str, Any] | None) -> str:
    if last is None:
        return "watchdog: no cycle yet"
    counts = last.get("counts") or {}
    done = ", ".join(f"{counts.get(k, 0)} {k.replace('_', ' ')}" for k in HEADLINE)
    systemic = "; SYSTEMIC: most agents unreachable, nothing recovered" if last["systemic"] else ""
    return (f"watchdog: last {last['scope']} cycle at {last['at']} took "
            f"{last['duration_ms']:.0f} ms: {done}{systemic}")
