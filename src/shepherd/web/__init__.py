"""The dashboard: server-rendered pages over the control plane's own services, served at ``/``.

``install_dashboard(api)`` adds the pages, the sign-in routes and the static files (one
stylesheet, one script, no third-party code, nothing fetched from elsewhere) to the REST API's
app. Pages read through the same route functions, services and repositories as the REST API;
live updates come over ``/api/events`` (the API layer). Templates are in ``templates/``, static
files in ``static/``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from shepherd.web import executions, fleet, health, schedules, signin
from shepherd.web.health import DEFAULT_SECTIONS, HealthSection

STATIC_DIR = Path(__file__).resolve().parent / "static"


def install_dashboard(api: FastAPI, extra_sections: Iterable[HealthSection] = ()) -> None:
    """Serve the dashboard from ``api``; ``extra_sections`` join the health page's sections."""
    api.state.health_sections = (*DEFAULT_SECTIONS, *extra_sections)
    for module in (signin, fleet, executions, schedules, health):
        api.include_router(module.router)
    api.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
