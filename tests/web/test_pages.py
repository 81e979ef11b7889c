"""The dashboard's pages over real stores: what each shows, what each role may do, CSRF on every
state change, HTML errors, safe headers, and health sections that exist only with their feature."""

from __future__ import annotations

import dataclasses
import re
from html import unescape

import pytest

from shepherd.alerts.service import AlertService
from shepherd.api.context import ApiContext
from shepherd.canary.collect import CollectConfig, Collector
from shepherd.canary.service import CanaryService
from shepherd.canary.snapshot import CanarySettings
from shepherd.core.ids import ExecutionId
from shepherd.core.models import Leftover, TransitionFields
from shepherd.core.signals import Severity, Signal, SignalKey
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.web import install_dashboard
from shepherd.web.health import HealthSection
from shepherd.web.routing import Viewer
from tests.api.helpers import make_refs, start_running, submit_on
from tests.api.test_canary_api import NoRuntimes
from tests.api.test_circuits import park_dormant
from tests.web.conftest import SAME_ORIGIN, Dashboard, action_forms, csrf_of


async def test_the_fleet_page_shows_agents_totals_and_the_chart(dashboard: Dashboard) -> None:
    await submit_on(dashboard.api, "alpha")
    async with dashboard.signed_in("viewer") as browser:
        page = await browser.get("/")
        live = await browser.get("/?fragment=live")
    assert page.status_code == 200
    for text in ('data-agent="alpha"', 'data-agent="beta"', '<svg viewBox', "Executions / min",
                 'id="total-queued">1<', "0 of 3 slots in use", 'src="/static/dashboard.js"'):
        assert text in page.text
    assert live.text.lstrip().startswith('<div id="fleet-live"')
    assert "<html" not in live.text


async def test_the_fleet_page_shows_each_agents_circuit_breaker(dashboard: Dashboard) -> None:
    await park_dormant(dashboard.api.redis.circuits, "alpha", dashboard.api.clock.now_ms())
    async with dashboard.signed_in("viewer") as browser:
        page = (await browser.get("/")).text
    alpha = page[page.index('data-agent="alpha"'):page.index('data-agent="beta"')]
    beta = page[page.index('data-agent="beta"'):]
    assert 'class="badge circuit-dormant"' in alpha and "10 failed probes" in unescape(alpha)
    assert 'class="badge circuit-closed"' in beta


async def test_pages_send_headers_that_keep_them_safe(dashboard: Dashboard) -> None:
    async with dashboard.signed_in("viewer") as browser:
        response = await browser.get("/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "<script>" not in response.text and " style=" not in response.text


async def test_a_viewer_sees_no_action_at_all(dashboard: Dashboard) -> None:
    refs = await make_refs(dashboard.api)
    await start_running(dashboard.api, refs.execution)
    async with dashboard.signed_in("viewer") as browser:
        pages = [await browser.get(p) for p in (
            "/", "/executions", f"/executions/{refs.execution}", f"/executions/{refs.cancelled}",
            "/schedules", "/health")]
    for page in pages:
        assert page.status_code == 200
        assert action_forms(page.text) == []
        assert "<button" in page.text  # only "Sign out"
        assert page.text.count("<button") == 1 + ("Apply" in page.text)


async def test_an_operator_sees_the_actions_that_fit_each_status(dashboard: Dashboard) -> None:
    refs = await make_refs(dashboard.api)
    async with dashboard.signed_in("operator") as browser:
        queued = await browser.get(f"/executions/{refs.execution}")
        cancelled = await browser.get(f"/executions/{refs.cancelled}")
        fleet = await browser.get("/")
        schedules = await browser.get("/schedules")
    assert action_forms(queued.text) == [f"/executions/{refs.execution}/cancel"]
    assert action_forms(cancelled.text) == [f"/executions/{refs.cancelled}/retry"]
    assert action_forms(fleet.text) == ["/runs"]
    assert f"/schedules/{refs.schedule}/disable" in action_forms(schedules.text)
    assert f"/schedules/{refs.schedule}/run" in action_forms(schedules.text)


async def test_an_operator_starts_a_run_and_lands_on_it(dashboard: Dashboard) -> None:
    async with dashboard.signed_in("operator") as browser:
        csrf = csrf_of((await browser.get("/")).text)
        response = await browser.post("/runs", headers=SAME_ORIGIN, data={
            "csrf_token": csrf, "agent": "alpha", "input": "hello from the dashboard"})
        assert response.status_code == 303
        execution_id = response.headers["location"].removeprefix("/executions/")
        page = await browser.get(response.headers["location"])
    row = await dashboard.api.db.executions.get(ExecutionId(execution_id))
    assert (row.status, row.input, row.created_by) == (
        ExecutionStatus.QUEUED, "hello from the dashboard", "operator-token")
    assert 'data-execution-status="' + execution_id + '">queued<' in page.text
    assert "hello from the dashboard" in page.text


async def test_a_bad_run_form_says_what_is_wrong(dashboard: Dashboard) -> None:
    async with dashboard.signed_in("operator") as browser:
        csrf = csrf_of((await browser.get("/")).text)
        response = await browser.post("/runs", headers=SAME_ORIGIN,
                                      data={"csrf_token": csrf, "agent": "Not An Agent!"})
    assert response.status_code == 422
    assert "agent: String should match pattern" in response.text


@pytest.mark.parametrize("csrf", [None, "forged"])
async def test_a_post_without_the_right_csrf_token_is_refused(
    dashboard: Dashboard, csrf: str | None
) -> None:
    refs = await make_refs(dashboard.api)
    data = {"csrf_token": csrf} if csrf else {}
    async with dashboard.signed_in("admin") as browser:
        response = await browser.post(f"/executions/{refs.execution}/cancel", data=data,
                                      headers=SAME_ORIGIN)
    assert response.status_code == 403
    assert "did not carry the dashboard's CSRF token" in unescape(response.text)
    row = await dashboard.api.db.executions.get(ExecutionId(refs.execution))
    assert row.status is ExecutionStatus.QUEUED


async def test_the_csrf_token_may_come_as_a_header(dashboard: Dashboard) -> None:
    refs = await make_refs(dashboard.api)
    async with dashboard.signed_in("operator") as browser:
        csrf = csrf_of((await browser.get("/")).text)
        response = await browser.post(f"/executions/{refs.execution}/cancel",
                                      headers={**SAME_ORIGIN, "X-CSRF-Token": csrf})
    assert response.status_code == 303


async def test_a_viewer_cannot_act_even_with_a_valid_csrf_token(dashboard: Dashboard) -> None:
    refs = await make_refs(dashboard.api)
    async with dashboard.signed_in("viewer") as browser:
        csrf = csrf_of((await browser.get("/")).text)
        response = await browser.post(f"/executions/{refs.execution}/cancel",
                                      data={"csrf_token": csrf}, headers=SAME_ORIGIN)
    assert response.status_code == 403
    assert "this needs the operator role; you are signed in as viewer-token" in response.text


async def test_cancel_retry_and_schedule_actions_go_through(dashboard: Dashboard) -> None:
    refs = await make_refs(dashboard.api)
    async with dashboard.signed_in("operator") as browser:
        csrf = {"csrf_token": csrf_of((await browser.get("/")).text)}

        async def post(path: str) -> str:
            response = await browser.post(path, data=csrf, headers=SAME_ORIGIN)
            assert response.status_code == 303, response.text
            return str(response.headers["location"])

        assert await post(f"/executions/{refs.execution}/cancel") == (
            f"/executions/{refs.execution}?notice=cancelled")
        retried = await post(f"/executions/{refs.cancelled}/retry")
        assert await post(f"/schedules/{refs.schedule}/disable") == "/schedules?notice=disabled"
        assert await post(f"/schedules/{refs.schedule}/run") == "/schedules?notice=run-queued"
        shown = await browser.get(retried)
        again = await browser.post(f"/executions/{refs.execution}/cancel", data=csrf,
                                   headers=SAME_ORIGIN)
    assert "A new attempt is queued" in shown.text
    assert again.status_code == 409 and "only queued or running" in again.text
    cancelled = await dashboard.api.db.executions.get(ExecutionId(refs.execution))
    assert cancelled.status is ExecutionStatus.CANCELLED
    schedule = await dashboard.api.db.schedules.get(refs.schedule)
    assert not schedule.enabled


async def test_the_execution_page_shows_fields_timeline_and_stored_output(
    dashboard: Dashboard,
) -> None:
    refs = await make_refs(dashboard.api)
    async with dashboard.signed_in("viewer") as browser:
        page = await browser.get(f"/executions/{refs.cancelled}")
        live = await browser.get(f"/executions/{refs.cancelled}?fragment=live")
        output = await browser.get(f"/executions/{refs.cancelled}/output")
    timeline = re.findall(r'<tr data-seq="\d+">', page.text)
    assert len(timeline) == 2
    assert "cancelled by test" in page.text and ">created<" in page.text
    assert live.text.lstrip().startswith('<div id="execution-live"')
    assert output.text.lstrip().startswith('<section id="output"')
    assert "data-live-every-ms" not in output.text  # finished: nothing to follow


async def test_the_execution_page_shows_unread_input_and_processes_left_behind(
    dashboard: Dashboard,
) -> None:
    api = dashboard.api
    row = await submit_on(api, "alpha")
    await start_running(api, row.id)
    assert await api.db.executions.transition(
        row.id, ExecutionStatus.FINALIZING, Cause.CHILD_EXITED, actor="test",
        now_ms=api.clock.now_ms(),
        fields=TransitionFields(exit_code=0, input_unread=True,
                                leftovers=(Leftover(4242, "sleep"),)))
    async with dashboard.signed_in("viewer") as browser:
        page = unescape((await browser.get(f"/executions/{row.id}")).text)
    assert "the child exited before reading all of it" in page
    assert "sleep (pid 4242)" in page


async def test_a_running_execution_shows_its_runtime_output_and_follows_it(
    dashboard: Dashboard,
) -> None:
    refs = await make_refs(dashboard.api)
    await start_running(dashboard.api, refs.execution)
    dashboard.runtime.tails[refs.execution] = "line 1\nline 2 <b>"
    async with dashboard.signed_in("viewer") as browser:
        output = await browser.get(f"/executions/{refs.execution}/output")
        dashboard.runtime.tails.clear()  # the runtime does not know it any more
        lost = await browser.get(f"/executions/{refs.execution}/output")
    assert "line 1\nline 2 &lt;b&gt;" in output.text and 'data-live-every-ms="1500"' in output.text
    assert "No live output: the runtime did not answer." in lost.text


async def test_the_executions_list_filters_and_pages(dashboard: Dashboard) -> None:
    api = dashboard.api
    ids = []
    for _ in range(55):
        api.clock.advance(0.001)
        ids.append((await submit_on(api, "alpha")).id)
    beta = await submit_on(api, "beta")
    async with dashboard.signed_in("viewer") as browser:
        first = await browser.get("/executions?agent=alpha")
        older = re.search(r'href="(/executions\?[^"]*cursor=[^"]+)" rel="next"', first.text)
        assert older is not None
        second = await browser.get(older.group(1).replace("&amp;", "&"))
        by_status = await browser.get("/executions?status=queued&window=1h")
        rows = await browser.get("/executions?agent=beta&fragment=rows")
    assert first.text.count('class="mono">') == 50
    assert ids[-1] in first.text and ids[0] not in first.text
    assert ids[0] in second.text and second.text.count('class="mono">') == 5
    assert 'data-live-fragment' not in second.text.split("<tbody")[1].split(">")[0]
    assert beta.id in by_status.text
    assert rows.text.lstrip().startswith('<tbody id="execution-rows"') and beta.id in rows.text


async def test_errors_are_pages_with_the_api_status(dashboard: Dashboard) -> None:
    async with dashboard.signed_in("viewer") as browser:
        missing = await browser.get("/executions/17000000000000000000000")
        bad = await browser.get("/executions?status=sleeping")
    assert missing.status_code == 404 and "<h1>Not found</h1>" in missing.text
    assert bad.status_code == 422 and "query.status" in bad.text


async def test_a_scoped_token_sees_its_agent_only(dashboard: Dashboard) -> None:
    refs = await make_refs(dashboard.api)
    async with dashboard.signed_in("scoped") as browser:
        fleet = await browser.get("/")
        other = await browser.get(f"/executions/{refs.beta_execution}")
        schedules = await browser.get("/schedules")
    assert 'data-agent="alpha"' in fleet.text and 'data-agent="beta"' not in fleet.text
    assert other.status_code == 404
    assert refs.beta_schedule not in schedules.text and refs.schedule in schedules.text


async def test_health_shows_the_sections_that_exist_and_only_those(dashboard: Dashboard) -> None:
    async def on(ctx: ApiContext, viewer: Viewer) -> dict[str, object]:
        return {"subscribers": 7, "cursor": {}, "sources": [viewer.principal.role.value]}

    async def off(ctx: ApiContext, viewer: Viewer) -> None:
        return None

    install_dashboard(dashboard.app, [
        HealthSection("probe", "Probe", "health/live_events.html", on),
        HealthSection("switched-off", "Switched off", "health/live_events.html", off),
    ])
    dashboard.app.state.health_sections = dashboard.app.state.health_sections[-2:]
    async with dashboard.signed_in("viewer") as browser:
        page = await browser.get("/health")
    assert 'id="section-probe"' in page.text and "Source viewer" in page.text
    assert "switched-off" not in page.text


async def alerting_with_a_canary(dashboard: Dashboard) -> CanaryService:
    """The dashboard's control plane with alerts (one open: alpha's dormant circuit) and a
    canary that has not run yet."""
    api = dashboard.api
    alerts = AlertService(api.db, api.clock)
    await alerts.evaluate("breaker", [Signal(SignalKey("breaker", "dormant", "alpha"),
                                             Severity.MAJOR, "agent alpha has not answered")])
    collector = Collector(api.db, api.redis, NoRuntimes(), api.clock,
                          CollectConfig(CanarySettings(), {}))
    canary = CanaryService(api.db, collector, alerts, api.clock)
    dashboard.app.state.ctx = dataclasses.replace(api.ctx, alerts=alerts, canary=canary)
    return canary


async def test_health_shows_open_alerts_and_the_canary_to_fleet_wide_tokens(
    dashboard: Dashboard
) -> None:
    canary = await alerting_with_a_canary(dashboard)
    await canary.run_cycle(["G-06"])
    async with dashboard.signed_in("viewer") as browser:
        page = unescape((await browser.get("/health")).text)
    assert "breaker/dormant/alpha" in page and "agent alpha has not answered" in page
    assert 'id="section-canary"' in page and "1 invariant(s)" in page
    board = page[page.index('class="canary-board"'):]
    assert board.count("data-invariant=") == 27
    g06 = board[board.index('data-invariant="G-06"'):board.index('data-invariant="L-03"')]
    assert ">green<" in g06 and "not run yet" in board and ">not here<" in board
    async with dashboard.signed_in("scoped") as browser:
        scoped = (await browser.get("/health")).text
    assert "breaker/dormant/alpha" not in scoped and 'id="section-canary"' not in scoped


async def test_health_lists_controllers_and_stores(dashboard: Dashboard) -> None:
    async with dashboard.signed_in("viewer") as browser:
        page = await browser.get("/health")
        live = await browser.get("/health?fragment=live")
    assert 'id="section-controllers"' in page.text and ">dispatcher<" in page.text
    assert 'id="section-stores"' in page.text and "Redis agrees" not in page.text
    assert 'id="section-live-events"' not in page.text  # no hub in this app
    assert live.text.lstrip().startswith('<div id="health-live"')


async def test_static_files_are_served_from_the_package(dashboard: Dashboard) -> None:
    async with dashboard.browser() as browser:
        script = await browser.get("/static/dashboard.js")
        style = await browser.get("/static/dashboard.css")
    assert script.status_code == 200 and "/api/events" in script.text
    assert style.status_code == 200


async def test_each_agent_row_is_a_live_region_of_its_own(dashboard: Dashboard) -> None:
    await park_dormant(dashboard.api.redis.circuits, "alpha", dashboard.api.clock.now_ms())
    async with dashboard.signed_in("viewer") as browser:
        page = (await browser.get("/")).text
        row = await browser.get("/?fragment=agent&agent=alpha")
        gone = await browser.get("/?fragment=agent&agent=nobody")
    assert ('data-live-types="execution.transition agent.changed:created '
            'agent.changed:deleted"') in page
    alpha = page[page.index('id="agent-row-alpha"'):page.index('id="agent-row-beta"')]
    assert 'data-live-types="agent.changed circuit.changed recovery.action"' in alpha
    assert 'data-live-agent="alpha"' in alpha and "fragment=agent&amp;agent=alpha" in alpha
    assert row.text.lstrip().startswith('<tr id="agent-row-alpha"') and "<html" not in row.text
    assert 'class="badge circuit-dormant"' in row.text
    assert gone.status_code == 404
    async with dashboard.signed_in("scoped") as browser:
        assert (await browser.get("/?fragment=agent&agent=beta")).status_code == 404


async def test_the_alerts_and_canary_sections_are_refreshed_alone_on_their_events(
    dashboard: Dashboard
) -> None:
    await alerting_with_a_canary(dashboard)
    async with dashboard.signed_in("viewer") as browser:
        page = (await browser.get("/health")).text
        section = await browser.get("/health?fragment=section&section=alerts")
        unknown = await browser.get("/health?fragment=section&section=nope")
    assert re.search(r'id="section-alerts"[^>]*data-live-types="alert.changed"', page)
    assert re.search(r'id="section-canary"[^>]*data-live-types="canary.changed"', page)
    assert not re.search(r'id="section-controllers"[^>]*data-live-types', page)
    assert section.text.lstrip().startswith('<section class="panel" id="section-alerts"')
    assert "breaker/dormant/alpha" in section.text and "<html" not in section.text
    assert unknown.status_code == 404
    async with dashboard.signed_in("scoped") as browser:  # fleet-wide sections: not theirs
        assert (await browser.get("/health?fragment=section&section=canary")).status_code == 404
