"""Turning page data into HTML: the Jinja2 environment, its filters, and the page response.

Every page and fragment goes through ``render``, which sets the headers that keep the dashboard
safe to open: a content security policy allowing only this origin's scripts and styles (no
inline script, no third party, so a stored string can never run), no framing, no referrer, no
caching of pages that show live state. Templates are autoescaped; filters format instants as UTC
and durations for people.

Must not: read a store (routers hand templates plain values).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

import shepherd

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: under it, browsers send "Origin: null" with form posts, which the
    # same-origin check must refuse.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


# What a page says after an action redirected back to it (``?notice=<key>``): fixed texts only,
# so a link cannot make the dashboard say anything else.
NOTICES = {
    "cancelled": "Cancelled: the slot is free and the runtime was told to stop the child.",
    "retried": "A new attempt is queued: this is it.",
    "enabled": "Schedule enabled: armed for its next tick.",
    "disabled": "Schedule disabled: it fires nothing until enabled again.",
    "run-queued": "Run queued.",
    "run-skipped": "Run recorded as skipped (overlap policy or a full backlog): see its reason.",
}


def instant(ms: int | None) -> str:
    """``2026-11-28 10:04:05`` (UTC) for an epoch-ms instant; an em dash for none."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def duration(ms: int | float | None) -> str:
    """``850 ms``, ``12 s``, ``4 min 05 s``, ``3 h 20 min``, ``2 d 4 h``."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{int(ms)} ms"
    s = int(ms // 1000)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def ago(ms: int | None, now_ms: int) -> str:
    if ms is None:
        return "never"
    return f"{duration(max(0, now_ms - ms))} ago"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("shepherd.web", "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(instant=instant, iso=iso, duration=duration)
    env.globals.update(ago=ago, version=shepherd.__version__, notices=NOTICES)
    return env


ENVIRONMENT = _environment()


def render_text(template: str, **context: Any) -> str:
    return ENVIRONMENT.get_template(template).render(**context)


def render(
    request: Request, template: str, status_code: int = 200, /, **context: Any
) -> HTMLResponse:
    html = render_text(template, request=request, **context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
