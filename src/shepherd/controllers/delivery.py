"""The outbox sender's two seams to the outside: where a destination points, and one HTTP POST.

``ConfiguredDestinations`` resolves a destination name to its URL at send time: an agent's
completion webhook from its row (``completion:<agent>``), an alert sink from the settings
(``alert:slack`` ...). ``post_delivery`` POSTs a JSON payload with its ``Idempotency-Key`` and
reduces the exchange to an ``AttemptResult``: a status code, a transport error's class name, the
Retry-After header and the first word of a short body. It must never let the URL reach a log line,
an error or a stored field: httpx exceptions embed the URL in their text, so only their class
name is kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import httpx

from shepherd.controllers.webhook import DESTINATION_PREFIX
from shepherd.core.delivery import AttemptResult, body_hint
from shepherd.core.outbox import mask_url
from shepherd.stores.sql.database import Database

# Enough of a body to read Slack's one-word error; a receiver cannot make us buffer more.
BODY_HINT_BYTES = 256


class SecretUrlFilter(logging.Filter):
    """Masks destination URLs in httpx's own request log line ("HTTP Request: POST <url> ...").

    httpx logs every request's full URL at INFO; for an outbox destination that URL is the
    secret. Installed once on the ``httpx`` logger; URLs are registered as they are resolved.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secret: set[str] = set()

    def register(self, url: str) -> None:
        self._secret.add(str(httpx.URL(url)))

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(str(a) in self._secret for a in record.args):
            record.args = tuple(mask_url(str(a)) if str(a) in self._secret else a
                                for a in record.args)
        return True


SECRET_URLS = SecretUrlFilter()
logging.getLogger("httpx").addFilter(SECRET_URLS)


class Destinations(Protocol):
    async def resolve(self, destinations: Iterable[str]) -> dict[str, str | None]:
        """Each destination's URL now, or None when it is not configured any more."""
        ...


class ConfiguredDestinations:
    """Agents' completion webhooks from SQL, fixed destinations (alert sinks) from a mapping."""

    def __init__(self, db: Database, fixed: Mapping[str, str | None]) -> None:
        self._db = db
        self._fixed = dict(fixed)

    async def resolve(self, destinations: Iterable[str]) -> dict[str, str | None]:
        wanted = set(destinations)
        urls: dict[str, str | None] = {d: self._fixed.get(d) for d in wanted}
        if any(d.startswith(DESTINATION_PREFIX) for d in wanted):
            agents: dict[str, str | None] = {
                a.name: a.completion_webhook_url for a in await self._db.agents.list()
            }
            for d in wanted:
                if d.startswith(DESTINATION_PREFIX):
                    urls[d] = agents.get(d.removeprefix(DESTINATION_PREFIX))
        return urls


async def post_delivery(
    client: httpx.AsyncClient, url: str, payload: Any, idempotency_key: str, timeout_s: float
) -> AttemptResult:
    """One POST, bounded by ``timeout_s`` in total; never raises for a failed exchange."""
    headers = {"Idempotency-Key": idempotency_key}
    try:
        SECRET_URLS.register(url)
        async with asyncio.timeout(timeout_s), client.stream(
            "POST", url, json=payload, headers=headers
        ) as response:
            head = b""
            async for chunk in response.aiter_bytes():
                head += chunk
                if len(head) >= BODY_HINT_BYTES:
                    break
            return AttemptResult(
                status_code=response.status_code,
                retry_after=response.headers.get("retry-after"),
                body_hint=body_hint(head[:BODY_HINT_BYTES].decode("utf-8", "replace")),
            )
    except (httpx.HTTPError, httpx.InvalidURL, TimeoutError) as exc:
        return AttemptResult(error_class=type(exc).__name__)
