"""The React app's way of calling the API, in a real browser: CORS, cookies and the origin rule
as Chromium applies them, not as a test client imitates them.

A small page served from http://localhost:3000 (where the React app runs) calls the API at
http://localhost:8000 as the app's axios instance does: `fetch` with `credentials: "include"`,
JSON bodies, no trailing slash, no CSRF header, and shows `data.message` (else `data.detail`)
on errors. The person's authenticator app is pyotp. The very same page served from another
origin gets nothing done.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyotp
import pytest
import requests

from tests.helpers import PASSWORD, USER_KEYS, next_code, wrong_code_now
from tests.support.browser import require_free_ports
from tests.support.http_client import fresh_email
from tests.support.server import free_port

pytestmark = pytest.mark.e2e

FRONT_END_PORT = 3000

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>2FA client</title></head>
<body>
<h1>2FA client</h1>
<p id="message" role="alert"></p>
<script>
const API = "http://localhost:8000/api/";

function show(text) {
    document.getElementById("message").textContent = typeof text === "string" ? text : "";
}

// The React app's axios instance: withCredentials, JSON bodies, no CSRF header.
async function api(path, body) {
    const init = {method: body === undefined ? "GET" : "POST", credentials: "include", headers: {}};
    if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
    }
    let response;
    try {
        response = await fetch(API + path, init);
    } catch (error) {  // refused by the browser: CORS, or no connection
        show(error.message);
        return {status: 0, error: error.message};
    }
    const data = await response.json();
    show(response.ok ? "" : (data.message || data.detail));
    return {status: response.status, data: data};
}

// A page of another site posting to the API the ways that need no CORS permission: a no-cors
// fetch and a form. The browser sends them; only the API can refuse them.
function noCorsPost(path, body) {
    return fetch(API + path, {method: "POST", mode: "no-cors", credentials: "include",
                              headers: {"Content-Type": "text/plain"}, body: JSON.stringify(body)});
}

function formPost(path, body) {
    const form = document.createElement("form");
    form.method = "POST";
    form.enctype = "text/plain";
    form.action = API + path;
    // The classic trick: a text/plain form sends `name=value`, which these two make valid JSON.
    const field = document.createElement("input");
    field.name = JSON.stringify(body).slice(0, -1) + ', "padding": "';
    field.value = '"}';
    form.appendChild(field);
    document.body.appendChild(form);
    form.submit();
}
</script>
</body>
</html>
"""


class PageHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class PageServer:
    """The page, served on 127.0.0.1:`port` from a thread."""

    def __init__(self, port: int):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), PageHandler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module", autouse=True)
def ports_free():
    """Both ports are checked before anything starts."""
    require_free_ports(8000, FRONT_END_PORT)


@pytest.fixture(scope="module")
def api(api_on_localhost_8000):
    return api_on_localhost_8000.url + "/api/auth/"


@pytest.fixture(scope="module")
def front_end(api):
    """The React app's origin, http://localhost:3000."""
    with PageServer(FRONT_END_PORT):
        yield f"http://localhost:{FRONT_END_PORT}/"


@pytest.fixture(scope="module")
def other_site(api):
    """The same page on an origin the API does not know."""
    port = free_port()
    with PageServer(port):
        yield f"http://127.0.0.1:{port}/"


class App:
    """The page in the browser: `call` runs its `api()` and returns {status, data} or {status: 0, error}."""

    def __init__(self, page, url: str):
        self.page = page
        page.goto(url)

    def call(self, path: str, body: dict | None = None) -> dict:
        if body is None:
            return self.page.evaluate("path => api(path)", path)
        return self.page.evaluate("([path, body]) => api(path, body)", [path, body])

    def message(self) -> str:
        return self.page.locator("#message").inner_text()

    def visible_cookies(self) -> str:
        return self.page.evaluate("document.cookie")


def assert_user(user: dict, *, email: str, otp_enabled: bool) -> None:
    assert USER_KEYS <= set(user)
    assert user["email"] == email
    assert user["otp_enabled"] is otp_enabled and user["otp_verified"] is otp_enabled


def enrol(app: App, email: str) -> tuple[str, str]:
    """register → login → generate → verify, checking each answer; (user_id, secret)."""
    answer = app.call(
        "auth/register", {"email": email, "name": "React", "password": PASSWORD, "passwordConfirm": PASSWORD}
    )
    assert answer == {"status": 201, "data": {"status": "success", "message": "Registered successfully, please login"}}

    answer = app.call("auth/login", {"email": email, "password": PASSWORD})
    assert answer["status"] == 200, answer
    assert answer["data"]["status"] == "success"
    assert_user(answer["data"]["user"], email=email, otp_enabled=False)
    user_id = answer["data"]["user"]["id"]

    answer = app.call("auth/otp/generate", {"user_id": user_id, "email": email})
    assert answer["status"] == 200, answer  # the only status that opens the app's QR dialog
    secret = answer["data"]["base32"]
    assert answer["data"]["otpauth_url"].startswith("otpauth://totp/")
    assert f"secret={secret}" in answer["data"]["otpauth_url"]

    answer = app.call("auth/otp/verify", {"user_id": user_id, "token": pyotp.TOTP(secret).now()})
    assert answer["status"] == 200, answer
    assert answer["data"]["otp_verified"] is True
    assert_user(answer["data"]["user"], email=email, otp_enabled=True)
    return user_id, secret


def test_page_on_localhost_3000_completes_the_whole_flow(page, front_end):
    app = App(page, front_end)
    email = fresh_email("react")
    user_id, secret = enrol(app, email)

    # Next visit: the password, then the app sees otp_enabled and asks for a code.
    answer = app.call("auth/login", {"email": email, "password": PASSWORD})
    assert answer["status"] == 200, answer
    assert_user(answer["data"]["user"], email=email, otp_enabled=True)
    assert secret not in str(answer)

    answer = app.call("auth/otp/validate", {"user_id": user_id, "token": wrong_code_now(secret)})
    assert answer["status"] == 400  # a 4xx: a 2xx with otp_valid false would send the person back to login
    assert app.message() == "Token is invalid or user doesn't exist"

    answer = app.call("auth/otp/validate", {"user_id": user_id, "token": next_code(secret)})
    assert answer == {"status": 200, "data": {"otp_valid": True}}
    assert app.message() == ""

    answer = app.call("auth/me")
    assert answer["status"] == 200, answer
    assert_user(answer["data"]["user"], email=email, otp_enabled=True)

    answer = app.call("auth/otp/disable", {"user_id": user_id})
    assert answer["status"] == 200, answer
    assert answer["data"]["otp_disabled"] is True
    assert_user(answer["data"]["user"], email=email, otp_enabled=False)

    # The session cookie is HttpOnly, and no XSRF-TOKEN cookie is visible for axios to echo.
    cookies = app.visible_cookies()
    assert "sessionid" not in cookies and "XSRF-TOKEN" not in cookies


def test_page_errors_show_a_readable_message(page, front_end):
    app = App(page, front_end)
    answer = app.call("auth/login", {"email": fresh_email("nobody"), "password": "not the password"})
    assert answer["status"] == 400
    assert app.message() == "Incorrect email or password"


def test_same_page_from_another_origin_is_refused(page, api, front_end, other_site):
    # A person with 2FA on and a full session in this browser...
    app = App(page, front_end)
    email = fresh_email("victim")
    user_id, secret = enrol(app, email)
    assert app.call("auth/login", {"email": email, "password": PASSWORD})["status"] == 200
    assert app.call("auth/otp/validate", {"token": next_code(secret)})["status"] == 200

    # ...opens the same page from another site, in the same browser.
    evil = App(page.context.new_page(), other_site)
    stranger = fresh_email("stranger")
    answer = evil.call("auth/register", {"email": stranger, "name": "Evil", "password": PASSWORD})
    assert answer["status"] == 0, answer  # the browser refused: no CORS permission for this origin
    assert answer["error"] == "Failed to fetch"
    assert evil.call("auth/otp/disable", {"user_id": user_id})["status"] == 0
    assert evil.call("auth/me")["status"] == 0

    # Requests that need no CORS permission reach the API, which refuses them.
    with evil.page.expect_response(api + "otp/disable") as refused:
        evil.page.evaluate("([path, body]) => noCorsPost(path, body)", ["auth/otp/disable", {"user_id": user_id}])
    assert refused.value.status == 403
    with evil.page.expect_navigation() as navigation:
        evil.page.evaluate("([path, body]) => formPost(path, body)", ["auth/otp/disable", {"user_id": user_id}])
    assert navigation.value.status == 403
    assert navigation.value.json()["status"] == "fail"

    # Nothing happened: no account for the stranger, 2FA still on, the session still full.
    response = requests.post(api + "login", json={"email": stranger, "password": PASSWORD}, timeout=30)
    assert response.status_code == 400
    answer = app.call("auth/me")
    assert answer["status"] == 200, answer
    assert_user(answer["data"]["user"], email=email, otp_enabled=True)
