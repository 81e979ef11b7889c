"""Instants at the API boundary: epoch milliseconds inside, ISO-8601 with ``Z`` outside.

Responses carry both (``queued_at`` and ``queued_at_ms``); query parameters accept either an
ISO-8601 instant (a missing offset means UTC) or epoch milliseconds. Parsing failures are
``ValueError`` so they surface as ordinary request validation errors naming the parameter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

# Instants beyond year 9999 cannot be rendered as ISO-8601; nothing legitimate lies there.
MAX_INSTANT_MS = 253_402_300_799_999


def to_iso(ms: int | None) -> str | None:
    """``2026-01-01T10:00:00.000Z`` for an epoch-ms instant; None stays None."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_instant_ms(value: object) -> int:
    """Epoch milliseconds from an int, a string of digits, or an ISO-8601 string."""
    if isinstance(value, bool):
        raise ValueError("expected an ISO-8601 instant or epoch milliseconds")
    if isinstance(value, int):
        return _bounded(value)
    if not isinstance(value, str):
        raise ValueError("expected an ISO-8601 instant or epoch milliseconds")
    text = value.strip()
    if text.isascii() and text.isdigit():
        return _bounded(int(text))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is neither an ISO-8601 instant (2026-01-01T10:00:00Z) "
            "nor epoch milliseconds"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _bounded(int(moment.timestamp() * 1000))


def _bounded(ms: int) -> int:
    if not 0 <= ms <= MAX_INSTANT_MS:
        raise ValueError(f"{ms} is outside the supported range of instants")
    return ms


# A query parameter holding an instant, in either form; documented as exactly that.
InstantQuery = Annotated[
    int,
    BeforeValidator(parse_instant_ms),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "integer", "minimum": 0, "maximum": MAX_INSTANT_MS},
            ],
            "description": "ISO-8601 instant (UTC when no offset) or epoch milliseconds.",
        }
    ),
]
