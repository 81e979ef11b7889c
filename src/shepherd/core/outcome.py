"""Success criteria: how a finished child becomes ``success`` or ``failed``.

The exit code decides. Whether the child read its input is a fact recorded beside the result
(``input_unread``); it fails a run only for an agent that requires its children to read their
input (``require_input_read``), as ``child_exited_early``. A process the child left behind never
changes the outcome: it is reported on the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from shepherd.core.status import ExecutionStatus

CHILD_EXITED_EARLY = "child_exited_early"


@dataclass(frozen=True, slots=True)
class Outcome:
    status: ExecutionStatus
    error_class: str | None
    error: str | None


def decide_outcome(
    exit_code: int | None,
    error_class: str | None,
    error: str | None,
    success_exit_codes: tuple[int, ...] = (0,),
    *,
    input_unread: bool = False,
    require_input_read: bool = False,
) -> Outcome:
    """``success`` only for a clean exit with an accepted code; anything else ``failed``.

    A run that the runtime flagged (timed out, terminated, could not spawn, lost to a runtime
    restart) fails whatever its exit code, because the code of a killed process says nothing
    about its work. An agent that requires its input read fails a child that left some unread,
    whatever its exit code, and says which code it had.
    """
    if error_class is not None:
        return Outcome(ExecutionStatus.FAILED, error_class, error or error_class)
    if exit_code is None:
        return Outcome(ExecutionStatus.FAILED, "no_exit_code", error or "no exit code recorded")
    if input_unread and require_input_read:
        return Outcome(
            ExecutionStatus.FAILED, CHILD_EXITED_EARLY,
            f"the child exited (code {exit_code}) without reading all of its input, "
            "which this agent requires",
        )
    if exit_code in success_exit_codes:
        return Outcome(ExecutionStatus.SUCCESS, None, None)
    accepted = ", ".join(str(c) for c in success_exit_codes)
    return Outcome(
        ExecutionStatus.FAILED, "exit_code", f"exit code {exit_code} (success is: {accepted})"
    )
