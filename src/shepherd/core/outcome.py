"""Success criteria: how a finished child becomes ``success`` or ``failed``."""

from __future__ import annotations

from dataclasses import dataclass

from shepherd.core.status import ExecutionStatus


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
) -> Outcome:
    """``success`` only for a clean exit with an accepted code; anything else ``failed``.

    A run that the runtime flagged (timed out, exited early, terminated, could not spawn) fails
    whatever its exit code, because the code of a killed process says nothing about its work.
    """
    if error_class is not None:
        return Outcome(ExecutionStatus.FAILED, error_class, error or error_class)
    if exit_code is None:
        return Outcome(ExecutionStatus.FAILED, "no_exit_code", error or "no exit code recorded")
    if exit_code in success_exit_codes:
        return Outcome(ExecutionStatus.SUCCESS, None, None)
    accepted = ", ".join(str(c) for c in success_exit_codes)
    return Outcome(
        ExecutionStatus.FAILED, "exit_code", f"exit code {exit_code} (success is: {accepted})"
    )
