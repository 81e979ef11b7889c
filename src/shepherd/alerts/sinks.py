"""Alert sinks: which destinations are configured, how each renders a notice, and URL masking.

Each configured URL (Slack incoming webhook, Alertmanager base URL, generic JSON webhook) becomes a
``SinkConfig`` with a destination name (``alert:slack`` ...). ``messages_for`` renders a notice
into one outbox message per sink; an unset URL means no message (the decision is still taken and
stored, and logged). URLs are secrets: only ``mask_url`` output (scheme and host) may be shown,
and only to admins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shepherd.alerts.notice import Notice
from shepherd.alerts.payloads import render_alertmanager, render_webhook
from shepherd.alerts.slack import render_slack
from shepherd.core.outbox import OutboxMessage, SinkKind, mask_url

__all__ = ["mask_url"]  # re-exported: the API masks sink URLs with it

TOPIC = "alert"
ALERTMANAGER_PATH = "/api/v2/alerts"


@dataclass(frozen=True, slots=True)
class SinkConfig:
    name: str  # "slack", "alertmanager", "webhook"
    kind: SinkKind
    url: str = ""  # excluded from repr below: never printed by accident

    @property
    def destination(self) -> str:
        return f"alert:{self.name}"

    def __repr__(self) -> str:
        return f"SinkConfig({self.name!r}, {mask_url(self.url)!r})"


@dataclass(frozen=True, slots=True)
class AlertDelivery:
    """How alert messages are sent: their max age, and Alertmanager's hold for firing alerts."""

    max_age_s: int
    alertmanager_hold_s: int


def configured_sinks(
    slack_url: str | None, alertmanager_url: str | None, webhook_url: str | None
) -> tuple[SinkConfig, ...]:
    sinks = []
    if slack_url:
        sinks.append(SinkConfig("slack", SinkKind.SLACK, slack_url))
    if alertmanager_url:
        base = alertmanager_url.rstrip("/")
        url = base if base.endswith(ALERTMANAGER_PATH) else base + ALERTMANAGER_PATH
        sinks.append(SinkConfig("alertmanager", SinkKind.ALERTMANAGER, url))
    if webhook_url:
        sinks.append(SinkConfig("webhook", SinkKind.WEBHOOK, webhook_url))
    return tuple(sinks)


def messages_for(
    sinks: Sequence[SinkConfig], notice: Notice, delivery: AlertDelivery
) -> list[OutboxMessage]:
    return [
        OutboxMessage(
            destination=sink.destination, sink=sink.kind, topic=TOPIC,
            subject=notice.key.label, idempotency_key=notice.idempotency_key,
            payload=_render(sink.kind, notice, delivery), max_age_s=delivery.max_age_s,
        )
        for sink in sinks
    ]


def _render(
    kind: SinkKind, notice: Notice, delivery: AlertDelivery
) -> dict[str, Any] | list[dict[str, Any]]:
    if kind is SinkKind.SLACK:
        return render_slack(notice)
    if kind is SinkKind.ALERTMANAGER:
        return render_alertmanager(notice, delivery.alertmanager_hold_s)
    return render_webhook(notice)
