"""The runtime's configuration: one frozen value built by the CLI or by tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# 64 KiB of output is enough to see why a run failed without holding megabytes per child.
DEFAULT_TAIL_BYTES = 64 * 1024
# A child gets this long to exit after SIGTERM before its group is SIGKILLed.
DEFAULT_KILL_GRACE_S = 5.0
# A result nobody acked within an hour is assumed collected by other means (or abandoned).
DEFAULT_RETENTION_S = 3600.0
# Bounds memory and disk when nobody acks: the oldest finished results go first beyond this.
DEFAULT_MAX_RETAINED = 1000
TOKEN_FILE = "agent.token"


@dataclass(frozen=True)
class RuntimeConfig:
    name: str
    host: str = "127.0.0.1"
    port: int = 0
    command: tuple[str, ...] = ()
    token: str | None = None
    data_dir: Path = Path(".shepherd-agent")
    tail_bytes: int = DEFAULT_TAIL_BYTES
    kill_grace_s: float = DEFAULT_KILL_GRACE_S
    retention_s: float = DEFAULT_RETENTION_S
    max_retained: int = DEFAULT_MAX_RETAINED
    # The agent's own variables for its children (the manifest's ``env``); see environment.py.
    agent_env: dict[str, str] = field(default_factory=dict)

    @property
    def executions_dir(self) -> Path:
        return self.data_dir / "executions"

    @property
    def token_path(self) -> Path:
        """Where a generated token is kept when none is configured."""
        return self.data_dir / TOKEN_FILE
