"""The dashboard over real stores, in process: the REST API's app with the dashboard installed,
and browsers-in-miniature (httpx clients keeping cookies) signed in with a role's token. And the
real browser: the system's Chromium driven by Playwright (skipped locally when it is not
installed; in CI, where ``.ci/run`` installs it, its absence fails)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI

from shepherd.agent_client.protocol import ExecutionState, RunState
from shepherd.api.app import create_api
from shepherd.errors import ExecutionNotFound
from shepherd.web import install_dashboard
from tests.api.conftest import Api, RecordingRuntime
from tests.api.conftest import api as api  # the REST API's fixture, which the dashboard extends

if TYPE_CHECKING:
    from playwright.sync_api import Browser

BASE = "http://shepherd.test"
SAME_ORIGIN = {"Origin": BASE}


@dataclass
class TailingRuntime(RecordingRuntime):
    """Stands in for agent runtimes: terminations recorded, output tails served from a dict."""

    tails: dict[str, str] = field(default_factory=dict)

    async def get(self, execution_id: str, wait_s: float = 0) -> ExecutionState:
        if execution_id not in self.tails:
            raise ExecutionNotFound(f"execution {execution_id} unknown to the runtime")
        return ExecutionState(execution_id=execution_id, state=RunState.RUNNING, timeout_s=60,
                              output_tail=self.tails[execution_id], boot_id="b")


@dataclass
class Dashboard:
    api: Api
    app: FastAPI
    runtime: TailingRuntime

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE)

    @asynccontextmanager
    async def signed_in(self, who: str) -> AsyncIterator[httpx.AsyncClient]:
        """A client that signed in with the token of ``who`` (a role, or "scoped")."""
        async with self.browser() as client:
            response = await client.post("/signin", data={"token": self.api.tokens[who]},
                                         headers=SAME_ORIGIN)
            assert response.status_code == 303, response.text
            yield client


@pytest.fixture
async def dashboard(api: Api) -> AsyncIterator[Dashboard]:
    runtime = TailingRuntime()
    api.directory.runtime = runtime
    app = create_api(api.ctx)
    install_dashboard(app)
    yield Dashboard(api, app, runtime)


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: CI must run the browser tests")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def action_forms(html: str) -> list[str]:
    """The actions of every POST form on a page except signing out."""
    actions = re.findall(r'<form method="post" action="([^"]+)"', html)
    return [a for a in actions if a != "/signout"]
