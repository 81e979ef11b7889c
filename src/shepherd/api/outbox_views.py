"""Response shapes of outbound deliveries (the outbox) and their destinations.

A delivery shows where it goes by destination name (``completion:reviewer``, ``alert:slack``),
what it is about, its status, attempts and last error (a class name or an HTTP status). It never
shows a URL or the payload's secrets: the outbox stores no URL, and these views add none.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from shepherd.api.instants import to_iso
from shepherd.core.outbox import DeliveryStatus
from shepherd.stores.sql.outbox import OutboxRecord


class DeliveryView(BaseModel):
    id: int
    destination: str
    sink: str
    topic: str
    subject: str
    idempotency_key: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    last_status_code: int | None
    created_at: str | None
    created_at_ms: int
    next_attempt_at: str | None
    next_attempt_at_ms: int | None
    delivered_at: str | None
    delivered_at_ms: int | None
    expires_at: str | None
    expires_at_ms: int

    @classmethod
    def of(cls, r: OutboxRecord) -> DeliveryView:
        waiting = r.status is DeliveryStatus.PENDING
        return cls(
            id=r.id, destination=r.destination, sink=r.sink.value, topic=r.topic,
            subject=r.subject, idempotency_key=r.idempotency_key, status=r.status,
            attempts=r.attempts, last_error=r.last_error, last_status_code=r.last_status_code,
            created_at=to_iso(r.created_at_ms), created_at_ms=r.created_at_ms,
            next_attempt_at=to_iso(r.next_attempt_at_ms) if waiting else None,
            next_attempt_at_ms=r.next_attempt_at_ms if waiting else None,
            delivered_at=to_iso(r.delivered_at_ms), delivered_at_ms=r.delivered_at_ms,
            expires_at=to_iso(r.expires_at_ms), expires_at_ms=r.expires_at_ms,
        )


class DestinationView(BaseModel):
    destination: str
    state: str  # "ok", "fatal" (stopped until its URL changes) or "blocked" (rate-limited)
    reason: str | None
    blocked_until: str | None
    blocked_until_ms: int | None
    last_delivered_at: str | None
    last_delivered_at_ms: int | None

    @classmethod
    def of(cls, row: dict[str, Any], now_ms: int) -> DestinationView:
        blocked = row["blocked_until_ms"] if row["blocked_until_ms"] > now_ms else None
        state = "fatal" if row["fatal_reason"] else "blocked" if blocked else "ok"
        return cls(
            destination=row["destination"], state=state, reason=row["fatal_reason"],
            blocked_until=to_iso(blocked), blocked_until_ms=blocked,
            last_delivered_at=to_iso(row["last_delivered_at_ms"]),
            last_delivered_at_ms=row["last_delivered_at_ms"],
        )
