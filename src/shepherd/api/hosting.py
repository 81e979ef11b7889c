"""What the API may ask of the process hosting it: under ``shepherd up``, the local runtimes.

``up`` starts a runtime for every agent with a ``command``; ``serve`` starts none. After a fleet
apply the API asks the host to bring its runtimes in line (``LocalRuntimeHost.apply``) and reports
what changed; with no host it says, per agent with a command, that nothing will run it here.
The API never starts or stops a process itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from shepherd.manifest.schema import Manifest


@dataclass(slots=True)
class RuntimeChanges:
    started: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    # Agent name -> why its runtime was not (re)started now: work in flight, or a start failure.
    pending: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


class LocalRuntimeHost(Protocol):
    async def apply(self, manifest: Manifest | None) -> RuntimeChanges:
        """Start, restart and stop local runtimes to match the agents (and ``manifest``'s env)."""
        ...


def unhosted_notes(manifest: Manifest) -> list[str]:
    """What to tell the caller when no process here starts runtimes (``shepherd serve``)."""
    return [
        f"agent {spec.name} has a command, but this control plane (shepherd serve) starts no "
        f"runtimes: run `shepherd agent --name {spec.name} --command ...` on a host with the "
        "fleet's SHEPHERD_AGENT_TOKEN and give the agent its url, or use shepherd up"
        for spec in manifest.agents
        if spec.command is not None and spec.url is None
    ]
