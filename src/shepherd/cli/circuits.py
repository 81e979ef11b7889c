"""The circuit breaker commands under ``shepherd agents``: show an agent's circuit with its recent
state changes, reset it (admin), and the circuit columns of ``shepherd agents ls``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from shepherd.cli.options import JsonOpt, TokenOpt, UrlOpt
from shepherd.cli.output import emit_json, emit_record, emit_table
from shepherd.cli.remote import Remote

CIRCUIT_FIELDS = ("agent", "state", "failures", "failed_probes", "opened_at", "next_probe_at",
                  "changed_at", "reason")
RemoteFactory = Callable[[str | None, str | None], Remote]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Agent name.")]


def with_circuit_columns(agent: dict[str, Any]) -> dict[str, Any]:
    """An agent from the API with its circuit flattened into two table columns: the state with
    the failures counted (``open/3``), and when the next probe is due."""
    circuit = agent.get("circuit") or {}
    state, failures = circuit.get("state"), circuit.get("failures") or 0
    return {**agent, "circuit": f"{state}/{failures}" if failures else state,
            "next_probe": circuit.get("next_probe_at")}


def register(agents: typer.Typer, remote: RemoteFactory) -> None:
    @agents.command("circuit")
    def circuit(name: NameArg, url: UrlOpt = None, token_: TokenOpt = None,
                as_json: JsonOpt = False) -> None:
        """An agent's circuit breaker and its recent state changes."""
        body = remote(url, token_).get(f"/api/agents/{name}/circuit")
        if as_json:
            emit_json(body)
            return
        emit_record(f"circuit of {name}", body, CIRCUIT_FIELDS)
        emit_table("state changes (newest first)", ("at", "kind", "from", "to", "by", "reason"), [
            [e.get("at"), e.get("kind"), e.get("from_state"), e.get("to_state"), e.get("by"),
             e.get("reason")] for e in body.get("events") or []
        ])

    @agents.command("reset-circuit")
    def reset_circuit(name: NameArg, url: UrlOpt = None, token_: TokenOpt = None,
                      as_json: JsonOpt = False) -> None:
        """Close an agent's circuit now, whatever its state (admin)."""
        body = remote(url, token_).post(f"/api/agents/{name}/circuit/reset")
        emit_json(body) if as_json else typer.echo(f"circuit of {name}: {body['state']}")
