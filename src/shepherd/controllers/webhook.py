"""Completion webhooks: POST a JSON summary of a finished execution, with retries.

The idempotency key is ``<execution id>:<attempt>`` (header ``Idempotency-Key``), so a receiver
can drop the duplicate a retry or a second finalizer may send. The URL is a secret: it never
appears in a log line or an error message.
"""

from __future__ import annotations

import asyncio
import logging
import random

import httpx

from shepherd.core.backoff import compute_backoff
from shepherd.core.models import Execution

log = logging.getLogger("shepherd.controllers.webhook")

# Three tries over ~3 s: enough for a receiver's brief hiccup, short enough to keep the finalizer
# lease well within its TTL.
ATTEMPTS = 3
BASE_S = 0.5
MAX_S = 2.0


def webhook_body(execution: Execution) -> dict[str, object]:
    return {
        "execution_id": execution.id,
        "agent": execution.agent,
        "schedule_id": execution.schedule_id,
        "attempt": execution.attempt,
        "status": execution.status.value,
        "exit_code": execution.exit_code,
        "error_class": execution.error_class,
        "finished_at_ms": execution.finished_at_ms,
        "completed_at_ms": execution.completed_at_ms,
    }


async def send_completion_webhook(url: str, execution: Execution, timeout_s: float = 5.0) -> bool:
    """POST the summary; True once a 2xx came back, False after the last failed try."""
    headers = {"Idempotency-Key": f"{execution.id}:{execution.attempt}"}
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        for attempt in range(ATTEMPTS):
            try:
                response = await client.post(url, json=webhook_body(execution), headers=headers)
                if response.is_success:
                    return True
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            log.info("completion webhook for %s: try %d failed (%s)", execution.id, attempt + 1,
                     problem)
            if attempt + 1 < ATTEMPTS:
                await asyncio.sleep(compute_backoff(attempt, BASE_S, MAX_S, 0.5, random.random()))
    log.warning("completion webhook for %s: gave up after %d tries", execution.id, ATTEMPTS)
    return False
