"""Identifier types and the time-ordered execution id.

An execution id is ``<13-digit epoch ms><10 hex chars of entropy>``: sorting ids as strings sorts
them by creation time, which keeps queued order and paging cursors cheap. The caller supplies the
entropy so this module stays pure.
"""

from __future__ import annotations

import re
from typing import NewType

ExecutionId = NewType("ExecutionId", str)
AgentName = NewType("AgentName", str)
ScheduleId = NewType("ScheduleId", str)

ENTROPY_BYTES = 5


def format_execution_id(now_ms: int, entropy: bytes) -> ExecutionId:
    if len(entropy) != ENTROPY_BYTES:
        raise ValueError(f"entropy must be {ENTROPY_BYTES} bytes, got {len(entropy)}")
    return ExecutionId(f"{now_ms:013d}{entropy.hex()}")


# Agent names end up inside Redis keys and URLs: keep them to a safe alphabet with no ':'.
AGENT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"


def validate_agent_name(name: str) -> AgentName:
    """Return ``name`` as an ``AgentName`` or raise ``ValueError`` saying what is accepted."""
    if not re.fullmatch(AGENT_NAME_PATTERN, name):
        raise ValueError(
            f"agent name {name!r} is invalid: use 1-63 lowercase letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return AgentName(name)
