"""Signals: what an alerting source (canary, watchdog, breaker, sentinel) says it sees right now.

A signal is keyed ``(source, kind, entity)``: the source that reports it, the kind of problem
(which picks the alert policy) and the thing it is about (an agent, an invariant id, a pid). It
carries a severity, a one-line summary, forensic rows (capped at ``MAX_FORENSIC_ROWS``; the count
of the rest is kept) and a runbook hint. Pure values: no I/O, no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

# Rows a signal keeps: enough to render any sink's excerpt; the rest are counted, not stored.
MAX_FORENSIC_ROWS = 50
MAX_SUMMARY_CHARS = 500
MAX_ROW_CHARS = 500
# Source, kind and entity end up in labels, keys and headers: a plain, bounded alphabet.
KEY_PART_PATTERN = r"^[A-Za-z0-9_.:/@-]{1,100}$"


class Severity(StrEnum):
    INFO = "info"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True, order=True)
class SignalKey:
    source: str
    kind: str
    entity: str

    def __post_init__(self) -> None:
        for name in ("source", "kind", "entity"):
            value = getattr(self, name)
            if not re.fullmatch(KEY_PART_PATTERN, value):
                raise ValueError(f"signal {name} {value!r}: use 1-100 letters, digits or _.:/@-")

    @property
    def label(self) -> str:
        return f"{self.source}/{self.kind}/{self.entity}"


@dataclass(frozen=True, slots=True)
class Signal:
    key: SignalKey
    severity: Severity
    summary: str
    forensics: tuple[str, ...] = ()
    runbook: str | None = None
    forensic_total: int = field(default=-1)  # -1: len(forensics) as given

    def __post_init__(self) -> None:
        total = len(self.forensics) if self.forensic_total < 0 else self.forensic_total
        object.__setattr__(self, "forensic_total", max(total, len(self.forensics)))
        rows = tuple(row[:MAX_ROW_CHARS] for row in self.forensics[:MAX_FORENSIC_ROWS])
        object.__setattr__(self, "forensics", rows)
        object.__setattr__(self, "summary", self.summary[:MAX_SUMMARY_CHARS])
