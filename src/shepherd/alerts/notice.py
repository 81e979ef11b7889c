"""A notice: one decision worth telling a person about, with what every sink renders from it.

Built by the alert service from a decision and the signal (or, for a recovery, from the stored
state of the incident that ended). Pure values; the renderers in ``slack`` and ``payloads`` turn
it into each sink's payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shepherd.core.alerting import AlertAction
from shepherd.core.signals import Severity, SignalKey


@dataclass(frozen=True, slots=True)
class Notice:
    action: AlertAction
    key: SignalKey
    severity: Severity
    summary: str
    forensics: tuple[str, ...]
    forensic_total: int
    runbook: str | None
    at_ms: int  # when the decision was taken
    opened_at_ms: int  # when the incident opened (it ends at ``at_ms`` for a recovery)
    incident: int  # the key's incident number, 1 for the first
    last_red_ms: int | None = None  # for a re-opened incident: when the previous one ended

    @property
    def idempotency_key(self) -> str:
        return f"alert:{self.key.label}:{self.incident}:{self.action.value}:{self.at_ms}"

    @property
    def is_recovery(self) -> bool:
        return self.action is AlertAction.RECOVERY


def iso(ms: int) -> str:
    """``2026-01-01T10:00:00.000Z``: the instant format every sink receives."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def minutes(ms: int) -> int:
    return max(0, round(ms / 60_000))
