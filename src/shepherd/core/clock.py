"""The clock seam: code that needs the time receives a ``Clock``; pure code receives ``now_ms``.

``ManualClock`` is the test double every test moves by hand. The real clock lives in
``shepherd.clock`` because reading the time is I/O.
"""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time, UTC epoch milliseconds."""
        ...


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self._now_ms = now_ms

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, seconds: float) -> None:
        self._now_ms += round(seconds * 1000)

    def set(self, now_ms: int) -> None:
        self._now_ms = now_ms
