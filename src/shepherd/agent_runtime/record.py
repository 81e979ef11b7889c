"""What the runtime knows about one execution, and its JSON form on disk.

A ``RunRecord`` is mutable on purpose: the supervisor updates it as the child runs, and the
registry persists it (a line of the runtime's journal, ``journal.py``) at every change of state,
so a runtime restarted after a crash still reports results that were never acked. A child's
output log, when it wrote any, lives in the execution's own directory (``execution_dir``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shepherd.agent_client.protocol import ExecutionState, Leftover, RunState

LOG_FILE = "output.log"


@dataclass
class RunRecord:
    execution_id: str
    attempt: int
    timeout_s: int
    boot_id: str
    state: RunState = RunState.PENDING
    pid: int | None = None
    pid_create_time: float | None = None
    started_at_ms: int | None = None
    finished_at_ms: int | None = None
    exit_code: int | None = None
    error_class: str | None = None
    error: str | None = None
    input_unread: bool = False
    leftovers: list[Leftover] = field(default_factory=list)
    tail: bytearray = field(default_factory=bytearray, repr=False)

    def view(self, boot_id: str, with_tail: bool = False) -> ExecutionState:
        return ExecutionState(
            execution_id=self.execution_id, state=self.state, attempt=self.attempt,
            timeout_s=self.timeout_s, pid=self.pid, started_at_ms=self.started_at_ms,
            finished_at_ms=self.finished_at_ms, exit_code=self.exit_code,
            error_class=self.error_class, error=self.error, boot_id=boot_id,
            input_unread=self.input_unread, leftovers=self.leftovers,
            output_tail=self.tail.decode("utf-8", errors="replace") if with_tail else None,
        )

    def finish(self, now_ms: int, exit_code: int | None, error_class: str | None = None,
               error: str | None = None) -> None:
        self.state = RunState.FINISHED
        self.finished_at_ms = now_ms
        self.exit_code = exit_code
        # The first reason wins: a timeout that then kills the child stays a timeout.
        self.error_class = self.error_class or error_class
        self.error = self.error or error

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        data["leftovers"] = [leftover.model_dump() for leftover in self.leftovers]
        data["tail"] = self.tail.decode("utf-8", errors="replace")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        tail = data.pop("tail", "")
        leftovers = [Leftover(**item) for item in data.pop("leftovers", [])]
        record = cls(**{**data, "state": RunState(data["state"]), "leftovers": leftovers})
        record.tail = bytearray(tail.encode("utf-8"))
        return record


def execution_dir(root: Path, execution_id: str) -> Path:
    return root / execution_id
