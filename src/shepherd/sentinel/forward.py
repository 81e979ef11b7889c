"""Forwarding the sentinel's signals to a control plane: ``POST /api/alerts/signals``.

Each scan sends every signal active now (the API treats a key it no longer receives as cleared),
with the sentinel's policy, so the control plane's incidents open, re-alert and recover exactly as
the local ones do, and go to the sinks configured there. A failed forward is logged (the error's
class, or the status and the API's error code — never the token) and simply happens again at the
next scan with the then-current set: nothing is queued.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from shepherd.core.alerting import AlertPolicy
from shepherd.core.signals import Signal

log = logging.getLogger("shepherd.sentinel.forward")

SIGNALS_PATH = "/api/alerts/signals"
# The API takes at most this many signals per call.
MAX_SIGNALS = 1000
# A control plane that does not answer within this is retried at the next scan.
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Forwarded:
    """What the control plane decided: ``(kind, entity, action)`` for every key not NONE."""

    decisions: tuple[tuple[str, str, str], ...]


class Forwarder:
    def __init__(self, url: str, token: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._client = httpx.AsyncClient(
            base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s, follow_redirects=False,
        )

    async def forward(
        self, source: str, active: Sequence[Signal], policy: AlertPolicy
    ) -> Forwarded | None:
        """Send the active set; the control plane's decisions, or None when it failed."""
        body = _body(source, active, policy)
        try:
            response = await self._client.post(SIGNALS_PATH, json=body)
        except httpx.HTTPError as exc:
            log.warning("sentinel: forwarding to the control plane failed (%s); sent again at "
                        "the next scan", type(exc).__name__)
            return None
        if response.status_code != 200:
            log.warning("sentinel: the control plane refused the signals: HTTP %d %s",
                        response.status_code, _error_code(response))
            return None
        try:
            decisions = response.json()["decisions"]
            return Forwarded(tuple((d["kind"], d["entity"], d["action"]) for d in decisions))
        except (ValueError, KeyError, TypeError):
            log.warning("sentinel: the control plane's answer is not an evaluation; is %s "
                        "a Shepherd API?", SIGNALS_PATH)
            return None

    async def close(self) -> None:
        await self._client.aclose()


def _body(source: str, active: Sequence[Signal], policy: AlertPolicy) -> dict[str, Any]:
    if len(active) > MAX_SIGNALS:
        log.warning("sentinel: %d active signals; forwarding the first %d", len(active),
                    MAX_SIGNALS)
    signals = [
        {"kind": s.key.kind, "entity": s.key.entity, "severity": s.severity.value,
         "summary": s.summary, "forensics": list(s.forensics),
         "forensic_total": s.forensic_total, "runbook": s.runbook}
        for s in active[:MAX_SIGNALS]
    ]
    return {"source": source, "signals": signals,
            "policy": {"pending_s": policy.pending_s, "realert_s": policy.realert_s,
                       "send_recovery": policy.send_recovery}}


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("code", ""))
    except ValueError:
        return ""
