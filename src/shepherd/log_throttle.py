"""Quiet logging for conditions that repeat: a store that is down, an agent that is unreachable.

A loop that fails every tick must not write a line (let alone a traceback) per tick. A
``LogThrottle`` writes the first occurrence of a condition at once, then at most one line per
``interval_s`` for the same key, saying how many were left out; ``clear(key)`` ends the condition
and tells the caller whether it was active, so the caller can say once that it is over.

Must not: decide what is worth logging, or swallow anything; it only spaces out the lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

# One line a minute is enough to see that a condition persists, and short enough to scroll past.
DEFAULT_INTERVAL_S = 60.0


@dataclass(slots=True)
class _Condition:
    last_logged_s: float
    suppressed: int = 0


class LogThrottle:
    def __init__(
        self, logger: logging.Logger, interval_s: float = DEFAULT_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._interval_s = interval_s
        self._monotonic = monotonic
        self._active: dict[str, _Condition] = {}

    def log(self, key: str, level: int, message: str, *args: object) -> bool:
        """Log ``message`` for ``key`` unless it was logged less than an interval ago.
        Returns True when a line was written."""
        now = self._monotonic()
        condition = self._active.get(key)
        if condition is not None and now - condition.last_logged_s < self._interval_s:
            condition.suppressed += 1
            return False
        suffix = ""
        if condition is not None and condition.suppressed:
            suffix = f" ({condition.suppressed} more since the last line)"
        self._log.log(level, message + suffix, *args)
        self._active[key] = _Condition(now)
        return True

    def active(self, key: str) -> bool:
        return key in self._active

    def clear(self, key: str) -> bool:
        """End the condition of ``key``; True when it was active (say once that it is over)."""
        return self._active.pop(key, None) is not None
