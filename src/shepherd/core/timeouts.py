"""Timeout resolution: resolved once, when an execution is created (DESIGN.md section 3)."""

from __future__ import annotations

# The fleet default when neither the schedule nor the agent says: long enough for an LLM coding
# agent's typical task, short enough that a hung child frees its slot within the hour.
DEFAULT_EXECUTION_TIMEOUT_S = 900

# Slot hashes outlive their execution's timeout by this much, so a slot never expires while the
# watchdog may still be acting on the execution.
SLOT_TTL_BUFFER_S = 300


def resolve_timeout_s(
    schedule_timeout_s: int | None,
    agent_timeout_s: int | None,
    default_s: int = DEFAULT_EXECUTION_TIMEOUT_S,
) -> int:
    """The schedule's timeout, else the agent's, else the fleet default."""
    for candidate in (schedule_timeout_s, agent_timeout_s):
        if candidate is not None:
            return candidate
    return default_s


def slot_ttl_s(timeout_s: int) -> int:
    """TTL of a slot hash for an execution with this timeout."""
    return timeout_s + SLOT_TTL_BUFFER_S
