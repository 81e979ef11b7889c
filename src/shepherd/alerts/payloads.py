"""Alertmanager and generic JSON webhook payloads for a notice, and its log line.

Alertmanager (``POST /api/v2/alerts``): labels from the signal key (``alertname`` = kind, plus
``source``, ``entity``, ``severity``, ``service=shepherd``), annotations with the summary, the
first forensic rows and the runbook; ``startsAt`` is when the incident opened. A firing alert
carries ``endsAt`` = now + ``hold_s`` (Alertmanager resolves an alert nobody refreshes), a
recovery carries ``endsAt`` = now, which resolves it. The JSON webhook gets every field.
"""

from __future__ import annotations

from typing import Any

from shepherd.alerts.notice import Notice, iso

ALERTMANAGER_FORENSIC_ROWS = 5


def render_alertmanager(notice: Notice, hold_s: int) -> list[dict[str, Any]]:
    labels = {
        "alertname": notice.key.kind, "source": notice.key.source,
        "entity": notice.key.entity, "severity": notice.severity.value, "service": "shepherd",
    }
    annotations = {
        "summary": notice.summary,
        "forensics": "\n".join(notice.forensics[:ALERTMANAGER_FORENSIC_ROWS]),
        "runbook": notice.runbook or "",
        "incident": str(notice.incident),
    }
    ends_ms = notice.at_ms if notice.is_recovery else notice.at_ms + hold_s * 1000
    return [{"labels": labels, "annotations": annotations,
             "startsAt": iso(notice.opened_at_ms), "endsAt": iso(ends_ms)}]


def render_webhook(notice: Notice) -> dict[str, Any]:
    return {
        "action": notice.action.value, "source": notice.key.source, "kind": notice.key.kind,
        "entity": notice.key.entity, "severity": notice.severity.value,
        "summary": notice.summary, "forensics": list(notice.forensics),
        "forensic_total": notice.forensic_total, "runbook": notice.runbook,
        "incident": notice.incident, "at": iso(notice.at_ms), "at_ms": notice.at_ms,
        "opened_at_ms": notice.opened_at_ms, "last_red_at_ms": notice.last_red_ms,
    }


def log_line(notice: Notice) -> str:
    return (f"alert {notice.action.value.upper()} {notice.key.label} "
            f"[{notice.severity.value}] incident #{notice.incident}: {notice.summary}")
