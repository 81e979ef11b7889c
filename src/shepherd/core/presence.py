"""What state an agent is in, as a person reading the fleet page needs it: one word.

The monitor stamps ``seen_at_ms`` when an agent's runtime answers its long-poll (at most every
250 ms while pages come back to back), which returns at the latest after the poll wait; an agent
not seen for longer than ``silent_after_ms`` is silent (its runtime is down, unreachable, or
not watched by any replica).

Pure: the caller passes ``now_ms`` and the window.
"""

from __future__ import annotations

from enum import StrEnum


class AgentState(StrEnum):
    UP = "up"  # its runtime answered within the window
    SILENT = "silent"  # it answered once, not within the window
    WAITING = "waiting"  # enabled with a runtime URL, never seen yet (just added or starting)
    NO_RUNTIME = "no runtime"  # no URL: a local agent whose runtime has not started
    DISABLED = "disabled"


def silent_after_ms(poll_wait_s: float) -> int:
    """Two missed long-polls plus slack for a slow answer."""
    return int((2 * poll_wait_s + 5) * 1000)


def decide_agent_state(
    *, enabled: bool, has_url: bool, seen_at_ms: int | None, now_ms: int, silent_after: int
) -> AgentState:
    if not enabled:
        return AgentState.DISABLED
    if not has_url:
        return AgentState.NO_RUNTIME
    if seen_at_ms is None:
        return AgentState.WAITING
    if now_ms - seen_at_ms > silent_after:
        return AgentState.SILENT
    return AgentState.UP
