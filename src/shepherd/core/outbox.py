"""The outbox's domain: what a delivery is, how each destination is paced, and which rows to send.

An outbound delivery (a completion webhook, an alert to Slack, Alertmanager or a JSON webhook) is
an ``OutboxMessage`` written in the same SQL transaction as the state change that caused it, then
sent later by the outbox sender. This module decides, purely and given ``now``, which stored rows
may be sent on this pass (``decide_sends``): per destination, at most ``concurrency`` in flight,
at most one start per ``min_interval_ms``, nothing while the destination is blocked (429) or fatal
(404/410), and, for ordered destinations, only the oldest unsettled row so an alert's recovery
never overtakes its alert. It must not do I/O or read the clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit


class SinkKind(StrEnum):
    """How a destination is spoken to; the sender's classification table is keyed by it."""

    COMPLETION = "completion"  # an agent's completion webhook (JSON, Idempotency-Key)
    SLACK = "slack"  # a Slack incoming webhook (Block Kit)
    ALERTMANAGER = "alertmanager"  # Prometheus Alertmanager, POST /api/v2/alerts
    WEBHOOK = "webhook"  # a generic JSON webhook for alerts


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    SENDING = "sending"  # claimed by a sender until ``claimed_until_ms``
    DELIVERED = "delivered"  # the receiver answered 2xx
    DEAD = "dead"  # given up: rejected, expired, or no destination any more


UNSETTLED = frozenset({DeliveryStatus.PENDING, DeliveryStatus.SENDING})


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One delivery to enqueue. ``destination`` names the receiver and never holds its URL: the
    sender resolves the URL when it sends, so a fixed URL also serves deliveries already queued.
    """

    destination: str  # e.g. "completion:reviewer", "alert:slack"
    sink: SinkKind
    topic: str  # what it is about: "completion" or "alert"
    subject: str  # the execution id, or the alert's signal key
    idempotency_key: str  # sent as ``Idempotency-Key``; the same on every retry
    payload: Mapping[str, Any] | Sequence[Any]
    max_age_s: int  # given up this long after it was enqueued


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    concurrency: int  # deliveries in flight at once
    min_interval_ms: int  # between two starts (Slack asks for at most one message a second)
    ordered: bool  # only the oldest unsettled row may be sent


@dataclass(frozen=True, slots=True)
class PendingRow:
    """A stored, unsettled row as the sender's decision sees it (no payload)."""

    id: int
    destination: str
    sink: SinkKind
    status: DeliveryStatus
    next_attempt_at_ms: int
    claimed_until_ms: int | None

    def is_due(self, now_ms: int) -> bool:
        if self.status is DeliveryStatus.PENDING:
            return self.next_attempt_at_ms <= now_ms
        # A claim that outlived its sender (killed mid-send) may be taken again.
        return self.claimed_until_ms is not None and self.claimed_until_ms < now_ms


@dataclass(frozen=True, slots=True)
class DestinationState:
    """What the store remembers of a destination across passes and restarts."""

    destination: str
    fatal_reason: str | None = None  # set when the receiver said "gone" (404/410, no_service)
    fatal_fingerprint: str | None = None  # the URL that said so; a new URL revives it
    blocked_until_ms: int = 0  # 429 Retry-After, or the backoff of the last failure

    def is_fatal_for(self, fingerprint: str) -> bool:
        return self.fatal_reason is not None and self.fatal_fingerprint == fingerprint


@dataclass(frozen=True, slots=True)
class SenderView:
    """The sender's own in-memory facts: what it has in flight and when it last started one."""

    in_flight: Mapping[str, frozenset[int]] = field(default_factory=dict)  # dest -> row ids
    last_start_ms: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendPlan:
    send: tuple[int, ...] = ()  # row ids to claim and send, oldest first
    abandon: tuple[int, ...] = ()  # rows whose destination no longer exists
    revive: tuple[str, ...] = ()  # fatal destinations whose URL changed since


def url_fingerprint(url: str) -> str:
    """A short, non-reversible name for a URL: safe to store and show, never the secret."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/…``: scheme and host only; path, query and credentials hidden."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "…"
    return f"{parts.scheme or '?'}://{host}{port}/…"


def decide_sends(
    rows: Sequence[PendingRow],
    states: Mapping[str, DestinationState],
    fingerprints: Mapping[str, str | None],
    policies: Mapping[SinkKind, DestinationPolicy],
    view: SenderView,
    now_ms: int,
) -> SendPlan:
    """Which rows to send now. ``rows`` come oldest first; ``fingerprints`` maps each destination
    to its current URL's fingerprint, or None when it is not configured any more."""
    by_destination: dict[str, list[PendingRow]] = {}
    for row in rows:
        by_destination.setdefault(row.destination, []).append(row)
    send: list[int] = []
    abandon: list[int] = []
    revive: list[str] = []
    for destination, queue in by_destination.items():
        fingerprint = fingerprints.get(destination)
        if fingerprint is None:
            abandon.extend(r.id for r in queue if r.id not in _flying(view, destination))
            continue
        state = states.get(destination, DestinationState(destination))
        if state.fatal_reason is not None and not state.is_fatal_for(fingerprint):
            revive.append(destination)
            state = DestinationState(destination)
        send.extend(_pick(queue, state, fingerprint, policies[queue[0].sink], view, now_ms))
    return SendPlan(tuple(sorted(send)), tuple(abandon), tuple(revive))


def _flying(view: SenderView, destination: str) -> frozenset[int]:
    return view.in_flight.get(destination, frozenset())


def _pick(
    queue: Sequence[PendingRow],
    state: DestinationState,
    fingerprint: str,
    policy: DestinationPolicy,
    view: SenderView,
    now_ms: int,
) -> list[int]:
    destination = queue[0].destination
    flying = _flying(view, destination)
    if state.is_fatal_for(fingerprint) or state.blocked_until_ms > now_ms:
        return []
    last = view.last_start_ms.get(destination)
    if policy.min_interval_ms and last is not None and now_ms - last < policy.min_interval_ms:
        return []
    room = policy.concurrency - len(flying)
    if policy.min_interval_ms:
        room = min(room, 1)  # paced: one start per interval
    if room <= 0:
        return []
    if policy.ordered:
        head = queue[0]
        return [head.id] if head.id not in flying and head.is_due(now_ms) else []
    due = [r.id for r in queue if r.id not in flying and r.is_due(now_ms)]
    return due[:room]
