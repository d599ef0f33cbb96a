"""Swagger UI and ReDoc in a real browser, served by gunicorn with production settings.

Swagger UI lists every endpoint, and "Try it out" works from the page itself: a same-origin
browser request with the session cookie, which the origin rule lets through. ReDoc renders
every endpoint. Both work under their Content-Security-Policy with nothing refused. The test also
keeps the README's screenshot of Swagger UI (docs/swagger-ui.png).
"""

import json
import re

import pytest

from otp_app.middleware import REDOC, SWAGGER_UI
from otp_app.urls import ENDPOINTS
from tests.helpers import PASSWORD
from tests.support.http_client import fresh_email
from tests.support.server import ROOT

pytestmark = pytest.mark.e2e

SCREENSHOT = ROOT / "docs" / "swagger-ui.png"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def expected_operations() -> set[tuple[str, str]]:
    """(METHOD, path) of every API endpoint, as clients call it, and the health check."""
    return {
        (method.upper(), "/api/auth/" + re.sub(r"<\w+:(\w+)>", r"{\1}", route))
        for route, view, _name in ENDPOINTS
        for method in HTTP_METHODS
        if hasattr(view, method)
    } | {("GET", "/healthz")}


def open_swagger(page, url: str) -> None:
    page.goto(url + "/swagger/")
    page.locator(".opblock").first.wait_for()


def swagger_operations(page) -> set[tuple[str, str]]:
    pairs = page.locator(".opblock-summary").evaluate_all(
        """summaries => summaries.map(summary => [
            summary.querySelector('.opblock-summary-method').textContent.trim(),
            summary.querySelector('.opblock-summary-path').dataset.path,
        ])"""
    )
    return {tuple(pair) for pair in pairs}


def try_it_out(page, path: str, body: dict | None = None) -> tuple[str, dict]:
    """Expand `path`, press "Try it out", fill the JSON body, "Execute": the status and body shown."""
    operation = page.locator(".opblock", has=page.locator(f'.opblock-summary-path[data-path="{path}"]'))
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    if body is not None:
        operation.locator("textarea.body-param__text").fill(json.dumps(body))
    operation.locator("button.execute").click()
    response = operation.locator(".live-responses-table .response")
    status = response.locator(".response-col_status").inner_text().strip()
    shown = response.locator(".response-col_description .microlight").first.inner_text()
    return status, json.loads(shown)


def test_swagger_ui_lists_every_endpoint(page, live_server_url):
    open_swagger(page, live_server_url)
    assert swagger_operations(page) == expected_operations()
    assert page.locator(".info .title").inner_text().startswith("2FA API")
    assert page.errors == []


def test_swagger_ui_try_it_out_registers_and_logs_in(page, live_server_url):
    open_swagger(page, live_server_url)
    email = fresh_email("swagger")

    status, body = try_it_out(page, "/api/auth/register", {"email": email, "name": "Swagger", "password": PASSWORD})
    assert (status, body) == ("201", {"status": "success", "message": "Registered successfully, please login"})

    status, body = try_it_out(page, "/api/auth/login", {"email": email, "password": PASSWORD})
    assert status == "200", body
    assert body["status"] == "success"
    assert body["user"]["email"] == email and body["user"]["otp_enabled"] is False

    # The browser kept the session cookie from login: the page is logged in.
    status, body = try_it_out(page, "/api/auth/me")
    assert status == "200", body
    assert body["user"]["email"] == email
    assert page.errors == []


def test_swagger_ui_screenshot_for_the_readme(page, api_on_localhost_8000):
    """The README's picture of Swagger UI, as `make run` shows it at http://localhost:8000. The
    file is only rewritten when the page looks different (a new endpoint, a new summary)."""
    open_swagger(page, api_on_localhost_8000.url)
    page.locator(".opblock-summary-path").last.wait_for()
    picture = page.screenshot()
    assert picture.startswith(b"\x89PNG\r\n\x1a\n")
    if not SCREENSHOT.exists() or SCREENSHOT.read_bytes() != picture:
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(picture)


def test_redoc_renders_every_endpoint(page, live_server_url):
    page.goto(live_server_url + "/redoc/")
    page.locator("[data-section-id^='operation/']").first.wait_for()
    # ReDoc draws each operation's method and full path in its right-hand panel.
    rendered = page.locator("span.http-verb").evaluate_all(
        """verbs => verbs
            .map(verb => [verb.textContent.trim().toUpperCase(), (verb.nextElementSibling || {}).textContent])
            .filter(([, path]) => path && path.startsWith('/'))"""
    )
    assert {tuple(operation) for operation in rendered} == expected_operations()
    assert page.locator("h1").first.inner_text().startswith("2FA API")
    assert page.errors == []


def test_swagger_ui_works_under_its_content_security_policy_with_nothing_refused(page, live_server_url):
    response = page.goto(live_server_url + "/swagger/")
    assert response.headers["content-security-policy"] == SWAGGER_UI
    page.locator(".opblock").first.wait_for()
    # "Try it out" is a request of the page's own (connect-src).
    status, body = try_it_out(page, "/healthz")
    assert (status, body["status"]) == ("200", "ok")
    assert page.csp_violations == []
    assert page.errors == []


def test_redoc_works_under_its_content_security_policy_with_nothing_refused(page, live_server_url):
    response = page.goto(live_server_url + "/redoc/")
    assert response.headers["content-security-policy"] == REDOC
    page.locator("[data-section-id^='operation/']").first.wait_for()
    assert page.locator("h1").first.inner_text().startswith("2FA API")
    # ReDoc searches in a worker of its own (worker-src blob:).
    page.get_by_placeholder("Search...").fill("login")
    page.locator("[data-role='search:results'] li").first.wait_for()
    assert page.csp_violations == []
    assert page.errors == []
