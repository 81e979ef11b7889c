"""Signing in and out of the dashboard: a pasted token or a one-time link, a cookie the page
script cannot read, refusals that say why, and no open redirect."""

from __future__ import annotations

from html import unescape

from shepherd.api.session_auth import SESSION_COOKIE
from shepherd.web.signin import local_admin_signin_url
from tests.web.conftest import BASE, SAME_ORIGIN, Dashboard, csrf_of


async def test_a_page_without_a_session_sends_to_the_signin_form(dashboard: Dashboard) -> None:
    async with dashboard.browser() as browser:
        response = await browser.get("/executions?status=failed")
        assert response.status_code == 303
        assert response.headers["location"] == "/signin?next=/executions%3Fstatus%3Dfailed"
        form = await browser.get("/signin")
    assert form.status_code == 200
    assert '<label for="token">API token</label>' in form.text
    assert 'href="/docs"' in form.text


async def test_a_token_signs_in_with_a_strict_httponly_cookie(dashboard: Dashboard) -> None:
    async with dashboard.browser() as browser:
        response = await browser.post(
            "/signin", data={"token": dashboard.api.tokens["viewer"], "next": "/schedules"},
            headers=SAME_ORIGIN)
        assert (response.status_code, response.headers["location"]) == (303, "/schedules")
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=43200"):
            assert attribute in cookie
        assert "Secure" not in cookie  # plain HTTP here; set over HTTPS
        assert dashboard.api.tokens["viewer"] not in cookie
        assert (await browser.get("/")).status_code == 200
        assert (await browser.get("/signin/check")).status_code == 204


async def test_a_bad_token_is_refused_with_a_clear_message(dashboard: Dashboard) -> None:
    async with dashboard.browser() as browser:
        response = await browser.post("/signin", data={"token": "shp_not-a-real-one"},
                                      headers=SAME_ORIGIN)
        assert response.status_code == 401
        assert "That token was not accepted: it is unknown or has been revoked" in response.text
        assert 'role="alert"' in response.text
        empty = await browser.post("/signin", data={"token": "  "}, headers=SAME_ORIGIN)
        assert "Paste an API token to sign in." in empty.text
        assert SESSION_COOKIE not in browser.cookies
        assert (await browser.get("/signin/check")).status_code == 401


async def test_a_signin_form_from_another_site_is_refused(dashboard: Dashboard) -> None:
    async with dashboard.browser() as browser:
        response = await browser.post("/signin", data={"token": dashboard.api.tokens["admin"]},
                                      headers={"Origin": "http://evil.example"})
        assert response.status_code == 403
        assert "only from this dashboard's pages" in unescape(response.text)
        assert SESSION_COOKIE not in browser.cookies


async def test_signing_in_never_redirects_off_site(dashboard: Dashboard) -> None:
    async with dashboard.browser() as browser:
        for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
            response = await browser.post(
                "/signin", data={"token": dashboard.api.tokens["viewer"], "next": target},
                headers=SAME_ORIGIN)
            assert response.headers["location"] == "/"


async def test_the_one_time_link_signs_in_once(dashboard: Dashboard) -> None:
    link = await local_admin_signin_url(dashboard.api.ctx, BASE)
    assert link is not None and link.startswith(f"{BASE}/signin/link?code=")
    assert dashboard.api.tokens["admin"] not in link
    path = link.removeprefix(BASE)
    code = path.split("code=")[1]
    async with dashboard.browser() as browser:
        confirm = await browser.get(path)
        assert confirm.status_code == 200 and "admin-token" in confirm.text
        assert SESSION_COOKIE not in browser.cookies  # looking at the link does not use it
        used = await browser.post("/signin/link", data={"code": code}, headers=SAME_ORIGIN)
        assert used.status_code == 303 and SESSION_COOKIE in browser.cookies
    async with dashboard.browser() as other:
        again = await other.post("/signin/link", data={"code": code}, headers=SAME_ORIGIN)
        assert again.status_code == 401 and "already used" in again.text
        shown = await other.get(path)
        assert shown.status_code == 401 and "already used or has expired" in shown.text


async def test_signing_out_ends_the_session(dashboard: Dashboard) -> None:
    async with dashboard.signed_in("viewer") as browser:
        page = await browser.get("/")
        refused = await browser.post("/signout", headers=SAME_ORIGIN)
        assert refused.status_code == 403  # no CSRF token
        done = await browser.post("/signout", data={"csrf_token": csrf_of(page.text)},
                                  headers=SAME_ORIGIN)
        assert (done.status_code, done.headers["location"]) == (303, "/signin")
        assert (await browser.get("/")).status_code == 303
