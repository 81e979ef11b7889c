"""Which alert sources were red when last evaluated, so a source that is green now and was green
then costs no evaluation (no alert-state transaction on every pass of a healthy fleet).

A source this process has not evaluated yet is always due: an incident a previous process left
open is then cleared (or kept) by the first evaluation. Pure bookkeeping: no I/O.
"""

from __future__ import annotations


class RedSources:
    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._red: set[str] = set()

    def due(self, source: str, red: bool) -> bool:
        """Whether ``source`` must be handed to the alert service this pass."""
        return red or source not in self._seen or source in self._red

    def record(self, source: str, red: bool) -> None:
        """``source`` was evaluated, red or green."""
        self._seen.add(source)
        if red:
            self._red.add(source)
        else:
            self._red.discard(source)
