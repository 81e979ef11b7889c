"""Slack Block Kit for a notice, always within Slack's limits.

Layout: a header with the severity (and "resolved" for a recovery), the summary with the signal
key, up to ``FORENSIC_ROWS_SHOWN`` forensic rows then "+N more", the runbook hint, and a context
line with the time, the incident number and "last red N min ago" when an incident re-opens.
Limits held by construction and checked in tests: at most 50 blocks, 150 characters in the
header, 3,000 per section text, about 12,000 for the whole payload (``MAX_PAYLOAD_CHARS``).
Text is escaped for mrkdwn (``&``, ``<``, ``>``), so a signal cannot inject links or mentions.
"""

from __future__ import annotations

import json
from typing import Any

from shepherd.alerts.notice import Notice, iso, minutes
from shepherd.core.alerting import AlertAction
from shepherd.core.signals import Severity

MAX_BLOCKS = 50
HEADER_CHARS = 150
SECTION_CHARS = 3000
MAX_PAYLOAD_CHARS = 12_000
FALLBACK_CHARS = 300
FORENSIC_ROWS_SHOWN = 5
FORENSIC_ROW_CHARS = 400
RUNBOOK_CHARS = 1000

EMOJI = {
    Severity.CRITICAL: ":rotating_light:", Severity.MAJOR: ":warning:",
    Severity.MINOR: ":large_yellow_circle:", Severity.INFO: ":information_source:",
}


def render_slack(notice: Notice) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [_header(notice), _section(_summary(notice))]
    if notice.forensics and not notice.is_recovery:
        blocks.append(_section(_forensics(notice)))
    if notice.runbook and not notice.is_recovery:
        blocks.append(_section(f"*Runbook:* {_clip(_escape(notice.runbook), RUNBOOK_CHARS)}"))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _context(notice)}]})
    blocks = blocks[:MAX_BLOCKS]
    fallback = _clip(_fallback(notice), FALLBACK_CHARS)
    while len(json.dumps({"text": fallback, "blocks": blocks})) > MAX_PAYLOAD_CHARS \
            and len(blocks) > 2:
        blocks.pop(-2)  # drop the least important middle block first
    return {"text": fallback, "blocks": blocks}


def _header(notice: Notice) -> dict[str, Any]:
    severity = notice.severity.value.upper()
    if notice.action is AlertAction.RECOVERY:
        text = f":white_check_mark: RESOLVED (was {severity}) · {notice.key.kind}"
    else:
        still = " (still red)" if notice.action is AlertAction.REALERT else ""
        text = f"{EMOJI[notice.severity]} {severity}{still} · {notice.key.kind}"
    text = f"{text} · {notice.key.entity}"
    return {"type": "header", "text": {"type": "plain_text", "text": _clip(text, HEADER_CHARS),
                                       "emoji": True}}


def _summary(notice: Notice) -> str:
    return f"{_escape(notice.summary)}\n`{_escape(notice.key.label)}`"


def _forensics(notice: Notice) -> str:
    shown = notice.forensics[:FORENSIC_ROWS_SHOWN]
    lines = [f"• `{_clip(_code(row), FORENSIC_ROW_CHARS)}`" for row in shown]
    more = notice.forensic_total - len(shown)
    if more > 0:
        lines.append(f"+{more} more")
    return "\n".join(lines)


def _context(notice: Notice) -> str:
    parts = [iso(notice.at_ms), f"incident #{notice.incident}"]
    if notice.is_recovery:
        parts.append(f"red for {minutes(notice.at_ms - notice.opened_at_ms)} min")
    elif notice.action is AlertAction.REALERT:
        parts.append(f"red since {minutes(notice.at_ms - notice.opened_at_ms)} min")
    elif notice.last_red_ms is not None:
        parts.append(f"last red {minutes(notice.at_ms - notice.last_red_ms)} min ago")
    return " · ".join(parts)


def _fallback(notice: Notice) -> str:
    word = "resolved" if notice.is_recovery else notice.severity.value
    return f"[{word}] {notice.key.label}: {notice.summary}"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SECTION_CHARS)}}


def _code(text: str) -> str:
    """Text inside an inline code span: escaped, and no backtick to close it early."""
    return _escape(text).replace("`", "'")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
