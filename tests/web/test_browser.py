"""The dashboard in a real browser (the system's Chromium) on a real ``shepherd up`` of the demo
fleet: sign in with the link ``up`` prints, watch a run go queued -> running -> success without a
reload, read its timeline, cancel a long run as an operator, see no actions as a viewer, a bad
token refused, a CSRF-less post refused, labelled controls at 1280x800 and on a phone-sized
window, an agent's row and the open alerts following their events, and a page that reconnects
by itself when the control plane comes back."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from shepherd.app.commands import DEMO_MANIFEST
from tests.conftest import child_pids, kill_new_children
from tests.fixtures.fleet import LiveFleet, running_fleet, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The demo fleet's agents and schedules, and two more whose runs a test can time: ``gate`` runs
# one at a time for as many seconds as its input says; ``long`` runs a minute.
EXTRA_AGENTS = [
    {"name": "gate", "command": ["sh", "-c", 'read s; echo "sleeping $s"; sleep "$s"; echo done'],
     "max_parallel": 1, "timeout_s": 60},
    {"name": "long", "command": ["sh", "-c", "cat >/dev/null; echo started; sleep 60"],
     "max_parallel": 2, "timeout_s": 120},
]
STEP_TIMEOUT_MS = 20_000
# Ids of every control a person can reach, and what each is called for a screen reader.
UNLABELLED = """() => Array.from(document.querySelectorAll(
  'input:not([type=hidden]), select, textarea, button, a[href]')).filter(el => {
    const named = (el.labels && el.labels.length) || el.getAttribute('aria-label') ||
      el.getAttribute('aria-labelledby') || (el.textContent || '').trim();
    return !named;
  }).map(el => el.outerHTML.slice(0, 80))"""


@pytest.fixture(autouse=True)
def no_leftover_children() -> Iterator[None]:
    """Runs of one test may outlive it here (the fleet is shared by the module): the check that
    nothing is left behind is made once, for the whole module, below."""
    yield


@pytest.fixture(scope="module", autouse=True)
def module_leaves_no_children() -> Iterator[None]:
    before = child_pids()
    yield
    left = kill_new_children(before, grace_s=5)
    assert not left, f"the module left child processes behind: {left}"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveFleet]:
    manifest = yaml.safe_load(Path(DEMO_MANIFEST).read_text())
    manifest["agents"].extend(EXTRA_AGENTS)
    tmp = tmp_path_factory.mktemp("browser-fleet")
    # Short long-polls: monitor leases of a killed control plane expire within seconds.
    env = {"SHEPHERD_MONITOR_POLL_WAIT_S": "2"}
    with running_fleet(tmp, yaml.safe_dump(manifest), env) as live:
        yield live


def signin_link(fleet: LiveFleet) -> str:
    line = wait_until(lambda: next((x for x in fleet.output if "one-time sign-in" in x), None),
                      10, "the sign-in link in the banner")
    found = re.search(r"(http://\S+/signin/link\?code=\S+)", line)
    assert found, line
    return found.group(1)


def token_for(fleet: LiveFleet, role: str) -> str:
    with fleet.api() as api:
        response = api.post("/api/tokens", json={"name": f"{role}-{id(api)}", "role": role})
        response.raise_for_status()
        return str(response.json()["token"])


def submit(fleet: LiveFleet, agent: str, text: str) -> str:
    with fleet.api() as api:
        response = api.post("/api/executions", json={"agent": agent, "input": text})
        response.raise_for_status()
        return str(response.json()["id"])


def status_of(fleet: LiveFleet, execution_id: str) -> str:
    with fleet.api() as api:
        return str(api.get(f"/api/executions/{execution_id}").json()["status"])


def context(chromium: Browser, width: int = 1280, height: int = 800) -> BrowserContext:
    made = chromium.new_context(viewport={"width": width, "height": height})
    made.set_default_timeout(STEP_TIMEOUT_MS)
    return made


def sign_in_with_token(chromium: Browser, fleet: LiveFleet, token: str) -> Page:
    page = context(chromium).new_page()
    page.goto(f"{fleet.url}/signin")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{fleet.url}/")
    return page


@pytest.fixture(scope="module")
def admin(chromium: Browser, fleet: LiveFleet) -> Iterator[Page]:
    """The local admin, signed in with the one-time link ``shepherd up`` printed."""
    page = context(chromium).new_page()
    page.goto(signin_link(fleet))
    page.get_by_role("button", name=re.compile("Sign in as")).click()
    page.wait_for_url(f"{fleet.url}/")
    yield page
    page.context.close()


def wait_live(page: Page) -> None:
    page.wait_for_function("() => window.shepherdLive && window.shepherdLive.state === 'live'")


def test_the_signin_link_shows_the_demo_fleet(admin: Page, fleet: LiveFleet) -> None:
    wait_live(admin)
    for name in ("echo", "slow", "flaky", "burst", "early-exit", "gate", "long"):
        assert admin.locator(f'tr[data-agent="{name}"]').count() == 1
    assert admin.locator(".chart svg").count() == 1
    assert admin.locator("#live-status").inner_text() == "live"


def test_a_run_goes_queued_running_success_without_a_reload(
    admin: Page, fleet: LiveFleet
) -> None:
    submit(fleet, "gate", "2")  # holds the only slot, so ours waits in the backlog
    admin.goto(f"{fleet.url}/")
    admin.get_by_label("Agent", exact=True).select_option("gate")
    admin.get_by_label("Input").fill("1.5")
    admin.get_by_role("button", name="Start run").click()
    admin.wait_for_url(re.compile(r"/executions/\w+$"))
    execution_id = admin.url.rsplit("/", 1)[1]
    admin.evaluate("""id => {
      window.__sameDocument = true;
      window.__seen = [];
      const note = () => {
        const el = document.querySelector(`[data-execution-status="${id}"]`);
        const text = el && el.textContent;
        if (text && window.__seen[window.__seen.length - 1] !== text) window.__seen.push(text);
      };
      note();
      new MutationObserver(note).observe(document.body,
        {subtree: true, childList: true, characterData: true});
    }""", execution_id)
    badge = admin.locator(f'.status-line [data-execution-status="{execution_id}"]')
    badge.filter(has_text="success").wait_for()
    seen = admin.evaluate("window.__seen")
    assert admin.evaluate("window.__sameDocument") is True  # never reloaded
    assert seen[0] == "queued" and seen[-1] == "success" and "running" in seen, seen
    assert seen.index("queued") < seen.index("running") < seen.index("success")
    timeline = admin.locator("table.timeline tbody tr")
    timeline.nth(3).wait_for()
    changes = [re.sub(r"\s+", " ", t).strip() for t in timeline.locator("td:nth-child(2)")
               .all_inner_texts()]
    assert changes == ["queued", "queued → running", "running → finalizing",
                       "finalizing → success"]
    assert "sleeping 1.5" in admin.locator("#output pre").inner_text()


def test_an_operator_cancels_a_long_run(chromium: Browser, fleet: LiveFleet) -> None:
    page = sign_in_with_token(chromium, fleet, token_for(fleet, "operator"))
    execution_id = submit(fleet, "long", "")
    page.goto(f"{fleet.url}/executions/{execution_id}")
    badge = page.locator(f'.status-line [data-execution-status="{execution_id}"]')
    badge.filter(has_text="running").wait_for()
    page.locator("#output pre").filter(has_text="started").wait_for()  # followed live
    page.get_by_role("button", name=f"Cancel execution {execution_id}").click()
    page.get_by_role("status").filter(has_text="Cancelled").wait_for()
    assert badge.inner_text() == "cancelled"
    assert page.get_by_role("button", name=re.compile("^Retry")).count() == 1
    assert status_of(fleet, execution_id) == "cancelled"
    assert "cancelled by operator-" in page.locator("table.timeline").inner_text()
    page.context.close()


def test_a_viewer_sees_no_action_buttons(chromium: Browser, fleet: LiveFleet) -> None:
    page = sign_in_with_token(chromium, fleet, token_for(fleet, "viewer"))
    execution_id = submit(fleet, "long", "")
    for path in ("/", "/executions", f"/executions/{execution_id}", "/schedules", "/health"):
        page.goto(f"{fleet.url}{path}")
        wait_live(page)
        forms = page.locator("form[method=post]")
        actions = [a for a in forms.evaluate_all("fs => fs.map(f => f.getAttribute('action'))")
                   if a != "/signout"]
        assert actions == [], (path, actions)
        buttons = set(page.get_by_role("button").all_inner_texts())
        assert buttons <= {"Sign out", "Apply"}, (path, buttons)
    page.context.close()


def test_a_bad_token_is_refused_with_a_clear_message(chromium: Browser, fleet: LiveFleet) -> None:
    page = context(chromium).new_page()
    page.goto(f"{fleet.url}/")
    assert "/signin" in page.url
    page.get_by_label("API token").fill("shp_this-is-not-a-token")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    assert "That token was not accepted: it is unknown or has been revoked" in alert.inner_text()
    assert page.context.cookies() == []
    page.context.close()


def test_a_post_without_the_csrf_token_is_refused(admin: Page, fleet: LiveFleet) -> None:
    execution_id = submit(fleet, "long", "")
    admin.goto(f"{fleet.url}/")
    answer = admin.evaluate("""async id => {
      const r = await fetch(`/executions/${id}/cancel`, {method: 'POST'});
      return {status: r.status, text: await r.text()};
    }""", execution_id)
    assert answer["status"] == 403
    assert "did not carry the dashboard&#39;s CSRF token" in answer["text"]
    assert status_of(fleet, execution_id) in {"queued", "running"}
    with fleet.api() as api:
        api.post(f"/api/executions/{execution_id}/cancel").raise_for_status()


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (375, 740)])
def test_every_control_has_a_name_and_pages_fit_the_window(
    chromium: Browser, fleet: LiveFleet, admin: Page, width: int, height: int
) -> None:
    page = admin.context.new_page()
    page.set_viewport_size({"width": width, "height": height})
    execution_id = submit(fleet, "echo", "hi")
    for path in ("/", "/executions", f"/executions/{execution_id}", "/schedules", "/health"):
        page.goto(f"{fleet.url}{path}")
        assert page.evaluate(UNLABELLED) == [], path
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (path, width, overflow)
        assert page.get_by_role("navigation", name="Main").is_visible()
    page.close()


def test_an_agents_row_follows_its_changes_without_a_reload(admin: Page, fleet: LiveFleet) -> None:
    admin.goto(f"{fleet.url}/")
    wait_live(admin)
    admin.evaluate("() => { window.__sameDocument = true; }")
    try:
        with admin.expect_request(lambda r: "fragment=agent&agent=long" in r.url), \
                fleet.api() as api:  # the row alone is fetched again, at its event
            api.patch("/api/agents/long", json={"tags": ["watched"]}).raise_for_status()
        admin.locator("#agent-row-long .tag").filter(has_text="watched").wait_for()
        assert admin.evaluate("window.__sameDocument") is True
    finally:
        with fleet.api() as api:
            api.patch("/api/agents/long", json={"tags": []}).raise_for_status()


def test_an_alert_shows_on_the_health_page_as_it_opens(admin: Page, fleet: LiveFleet) -> None:
    admin.goto(f"{fleet.url}/health")
    wait_live(admin)
    admin.evaluate("() => { window.__sameDocument = true; }")
    body = {"source": "browser-test", "signals": [
        {"kind": "probe", "entity": "e1", "severity": "minor", "summary": "seen by the page"}]}
    with fleet.api() as api:
        try:
            with admin.expect_request(lambda r: "fragment=section&section=alerts" in r.url):
                api.post("/api/alerts/signals", json=body).raise_for_status()
            admin.locator("#section-alerts").filter(has_text="seen by the page").wait_for()
            assert admin.evaluate("window.__sameDocument") is True
        finally:
            api.post("/api/alerts/signals", json={**body, "signals": []}).raise_for_status()


def serve_again(fleet: LiveFleet) -> None:
    """Start the killed control plane again alone (``shepherd serve``) on the same data dir and
    port, as an operator restarting a replica would: the runtimes and the embedded redis-server
    lived on, and the agents' URLs still point at them."""
    process = subprocess.Popen([sys.executable, "-m", "shepherd", "serve"], env=fleet.env,
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    fleet.process = process  # the fixture stops this one at the end
    threading.Thread(target=lambda: process.communicate(), daemon=True).start()

    def ready() -> bool:
        try:
            return httpx.get(f"{fleet.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 60, "the control plane to serve again", interval_s=0.2)


def test_the_page_reconnects_by_itself_when_the_control_plane_returns(
    admin: Page, fleet: LiveFleet
) -> None:
    """Runs last in this module: it restarts the control plane under the open page."""
    admin.goto(f"{fleet.url}/executions")
    wait_live(admin)
    fleet.kill()
    admin.wait_for_function("() => window.shepherdLive.state === 'reconnecting'")
    serve_again(fleet)
    admin.wait_for_function("() => window.shepherdLive.state === 'live'", timeout=60_000)
    execution_id = submit(fleet, "echo", "after the restart")
    row_badge = admin.locator(f'[data-execution-status="{execution_id}"]')
    # The dead control plane's monitor leases must expire first (poll wait + 10 s).
    row_badge.filter(has_text="success").wait_for(timeout=45_000)
    stats: dict[str, Any] = json.loads(admin.evaluate("JSON.stringify(window.shepherdLive)"))
    assert stats["reconnects"] >= 1
