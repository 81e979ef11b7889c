"""Slack Block Kit rendering: Slack's limits hold whatever the signal carries."""

from __future__ import annotations

import json

from shepherd.alerts.notice import Notice
from shepherd.alerts.payloads import render_alertmanager, render_webhook
from shepherd.alerts.slack import (
    HEADER_CHARS,
    MAX_BLOCKS,
    MAX_PAYLOAD_CHARS,
    SECTION_CHARS,
    render_slack,
)
from shepherd.core.alerting import AlertAction
from shepherd.core.signals import Severity, Signal, SignalKey

T0 = 1_700_000_000_000
KEY = SignalKey("canary", "S-01", "agent-" + "x" * 90)


def notice(action: AlertAction = AlertAction.ALERT, rows: int = 3, width: int = 20,
           last_red_ms: int | None = None, runbook: str | None = "Check the slots") -> Notice:
    signal = Signal(KEY, Severity.CRITICAL, "slots disagree <@channel> & more " + "s" * 600,
                    tuple(f"row {i} " + "r" * width for i in range(rows)), runbook)
    return Notice(action, KEY, signal.severity, signal.summary, signal.forensics,
                  signal.forensic_total, signal.runbook, T0, T0 - 600_000, 2, last_red_ms)


def texts(payload: dict) -> list[str]:  # type: ignore[type-arg]
    found = []
    for block in payload["blocks"]:
        if "text" in block:
            found.append(block["text"]["text"])
        for element in block.get("elements", []):
            found.append(element["text"])
    return found


def test_two_hundred_long_forensic_rows_stay_within_slacks_limits() -> None:
    payload = render_slack(notice(rows=200, width=3000, runbook="r" * 5000))
    assert len(payload["blocks"]) <= MAX_BLOCKS
    assert len(json.dumps(payload)) <= MAX_PAYLOAD_CHARS
    assert len(payload["blocks"][0]["text"]["text"]) <= HEADER_CHARS
    assert all(len(t) <= SECTION_CHARS for t in texts(payload))
    forensic = texts(payload)[2]
    assert forensic.count("• ") == 5 and forensic.endswith("+195 more")


def test_the_header_names_severity_and_the_context_says_when_it_was_last_red() -> None:
    payload = render_slack(notice(last_red_ms=T0 - 12 * 60_000))
    header = payload["blocks"][0]["text"]["text"]
    assert header.startswith(":rotating_light: CRITICAL · S-01")
    context = texts(payload)[-1]
    assert "2023-11-14T22:13:20.000Z" in context and "last red 12 min ago" in context
    assert "*Runbook:* Check the slots" in texts(payload)
    assert "+" not in texts(payload)[2]  # three rows: all shown, no "+N more"


def test_a_first_incident_has_no_last_red_and_a_recovery_says_how_long_it_was_red() -> None:
    assert "last red" not in texts(render_slack(notice()))[-1]
    recovered = render_slack(notice(AlertAction.RECOVERY))
    assert recovered["blocks"][0]["text"]["text"].startswith(":white_check_mark: RESOLVED")
    assert "red for 10 min" in texts(recovered)[-1]
    assert len(recovered["blocks"]) == 3  # header, summary, context: no forensics, no runbook


def test_signal_text_cannot_inject_mentions_or_links() -> None:
    summary = texts(render_slack(notice()))[1]
    assert "<@channel>" not in summary and "&lt;@channel&gt; &amp; more" in summary


def test_alertmanager_labels_come_from_the_key_and_recovery_ends_now() -> None:
    [firing] = render_alertmanager(notice(), hold_s=3600)
    assert firing["labels"] == {"alertname": "S-01", "source": "canary", "entity": KEY.entity,
                                "severity": "critical", "service": "shepherd"}
    assert firing["endsAt"] == "2023-11-14T23:13:20.000Z"
    [resolved] = render_alertmanager(notice(AlertAction.RECOVERY), hold_s=3600)
    assert resolved["endsAt"] == "2023-11-14T22:13:20.000Z"
    assert resolved["startsAt"] == "2023-11-14T22:03:20.000Z"


def test_the_webhook_payload_carries_every_field() -> None:
    body = render_webhook(notice(last_red_ms=T0 - 1))
    assert (body["action"], body["kind"], body["incident"], body["last_red_at_ms"]) == (
        "alert", "S-01", 2, T0 - 1)
    assert len(body["forensics"]) == 3 and body["forensic_total"] == 3
