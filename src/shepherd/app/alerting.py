"""Building the alert engine and the outbox sender from the settings — for the control plane and
for a host sentinel alike, so both send alerts the same way to the same sinks.

The caller owns what it builds: it drives the sender (the control plane under its leased loop,
the sentinel from its own loop) and stops it.
"""

from __future__ import annotations

from collections.abc import Callable

from shepherd.alerts.service import AlertService
from shepherd.alerts.sinks import AlertDelivery, configured_sinks
from shepherd.controllers.base import Wakeup
from shepherd.controllers.delivery import ConfiguredDestinations
from shepherd.controllers.outbox import OutboxConfig, OutboxSender
from shepherd.core.clock import Clock
from shepherd.core.delivery import RetryPolicy
from shepherd.settings import Settings
from shepherd.stores.sql.database import Database
from shepherd.telemetry import Telemetry


def build_alert_service(
    settings: Settings, db: Database, clock: Clock,
    on_enqueued: Callable[[], None] | None = None,
) -> AlertService:
    s = settings
    sinks = configured_sinks(s.alert_slack_webhook_url, s.alert_alertmanager_url,
                             s.alert_webhook_url)
    return AlertService(
        db, clock, sinks, delivery=AlertDelivery(s.alert_max_age_s, s.alert_alertmanager_hold_s),
        on_enqueued=on_enqueued,
    )


def build_outbox_sender(
    settings: Settings, db: Database, clock: Clock, alerts: AlertService | None, *, owner: str,
    wakeup: Wakeup | None = None, telemetry: Telemetry | None = None,
) -> OutboxSender:
    s = settings
    config = OutboxConfig(
        send_timeout_s=s.outbox_send_timeout_s, concurrency=s.outbox_concurrency,
        retry=RetryPolicy(base_s=1.0, max_s=s.outbox_retry_max_s),
    )
    fixed = {sink.destination: sink.url for sink in alerts.sinks} if alerts else {}
    return OutboxSender(db, clock, ConfiguredDestinations(db, fixed), owner=owner, config=config,
                        wakeup=wakeup, telemetry=telemetry)
