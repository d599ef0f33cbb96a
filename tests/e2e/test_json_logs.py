"""A real server's log with LOG_FORMAT=json (gunicorn's error and access logs and the service's):
every line is a JSON object, each access line and security event names the request id of its
answer, and a whole 2FA flow leaves no password, TOTP secret, code, recovery code or session key
in it. Its formatter: tests/unit/test_json_logs.py."""

import hashlib
import json
import re
from urllib.parse import quote

import pyotp
import pytest
import requests

from tests.helpers import FORGED, PASSWORD, forged_lines, next_code, spellings
from tests.support.server import serving

pytestmark = pytest.mark.e2e

EMAIL = "json-logs@example.com"


class Browser:
    """One person's cookie jar, keeping every answer and every session key it was given."""

    def __init__(self, url: str):
        self.api = url + "/api/auth/"
        self.http = requests.Session()
        self.answers: list[requests.Response] = []
        self.session_keys: set[str] = set()

    def post(self, path: str, body: dict | None = None) -> requests.Response:
        response = self.http.post(self.api + path, json=body or {}, timeout=30)
        self.answers.append(response)
        if "sessionid" in response.cookies:
            self.session_keys.add(response.cookies["sessionid"])
        return response


def whole_flow(browser: Browser) -> dict[str, list[str]]:
    """register, login, otp/generate, otp/verify, logout, login, otp/validate: the secrets each
    step sent or received, by kind."""
    body = {"email": EMAIL, "name": "Json Logs", "password": PASSWORD}
    assert browser.post("register", body).status_code == 201
    assert browser.post("login", {"email": EMAIL, "password": PASSWORD}).status_code == 200
    enrolment = browser.post("otp/generate").json()
    secret = enrolment["base32"]
    verify_code = pyotp.TOTP(secret).now()
    verified = browser.post("otp/verify", {"token": verify_code})
    assert verified.status_code == 200
    assert browser.post("logout").status_code == 200
    assert browser.post("login", {"email": EMAIL, "password": PASSWORD}).status_code == 200
    validate_code = next_code(secret)
    assert browser.post("otp/validate", {"token": validate_code}).json() == {"otp_valid": True}
    return {
        "password": [PASSWORD],
        "secret": [secret, secret.lower(), enrolment["otpauth_url"]],
        "code": [verify_code, validate_code],
        "recovery code": [spelling for code in verified.json()["recovery_codes"] for spelling in spellings(code)],
        "session key": [
            text for key in browser.session_keys for text in (key, hashlib.sha256(key.encode()).hexdigest())
        ],
    }


def test_every_line_of_a_json_server_log_is_json_and_names_its_request(tmp_path):
    with serving(tmp_path, env={"GUNICORN_ACCESS_LOG": "-", "LOG_FORMAT": "json"}) as server:
        browser = Browser(server.url)
        whole_flow(browser)
        kept = requests.get(server.url + "/healthz", headers={"X-Request-ID": "proxy-42"}, timeout=30)
        bad_host = requests.get(server.url + "/healthz", headers={"Host": "evil.example"}, timeout=30)
        forged_path = requests.get(server.url + "/healthz%0A" + quote(FORGED) + "?token=query-secret", timeout=30)
        forged_email = requests.post(
            server.url + "/api/auth/login", json={"email": f"m@example.com\n{FORGED}", "password": "x"}, timeout=30
        )
        statuses = [response.status_code for response in (kept, bad_host, forged_path, forged_email)]
        assert statuses == [200, 400, 404, 400]
    text = server.log.read_text()  # whole: the server has stopped
    lines = [json.loads(line) for line in text.splitlines()]  # each parses, or the test fails here
    assert all(
        isinstance(line, dict) and {"time", "level", "logger", "message", "request_id"} <= line.keys() for line in lines
    )
    assert forged_lines(text) == []
    assert "Traceback" not in text

    access = {line["request_id"]: line for line in lines if line["logger"] == "gunicorn.access"}
    answers = [
        *((answer, answer.request.path_url) for answer in browser.answers),
        (kept, "/healthz"),
        (bad_host, "/healthz"),
        (forged_path, f"/healthz\n{FORGED}"),  # without its query string
        (forged_email, "/api/auth/login"),
    ]
    for answer, path in answers:
        line = access[answer.headers["X-Request-ID"]]
        assert (line["method"], line["path"], line["status"]) == (answer.request.method, path, answer.status_code)
        assert line["remote_address"] == "127.0.0.1" and line["duration_ms"] >= 0
    assert access["proxy-42"]["path"] == "/healthz"
    assert "query-secret" not in text

    events = [(line["kind"], line["request_id"]) for line in lines if line["logger"] == "otp_app.security"]
    register, login, _generate, verify, _logout, login_again, _validate = browser.answers
    assert events == [
        ("registered", register.headers["X-Request-ID"]),
        ("login_succeeded", login.headers["X-Request-ID"]),
        ("otp_enabled", verify.headers["X-Request-ID"]),
        ("login_succeeded", login_again.headers["X-Request-ID"]),
        ("login_failed", forged_email.headers["X-Request-ID"]),
    ]


def test_a_whole_flow_leaves_no_secret_in_a_json_server_log(tmp_path):
    with serving(tmp_path, env={"GUNICORN_ACCESS_LOG": "-", "LOG_FORMAT": "json"}) as server:
        secrets = whole_flow(Browser(server.url))
    text = server.log.read_text()  # whole: the server has stopped
    for kind, values in secrets.items():
        assert values, kind
        for value in values:
            # Codes are six digits: looked for as a number of their own, not inside a longer one.
            pattern = rf"(?<!\d){value}(?!\d)" if kind == "code" else re.escape(value)
            assert not re.search(pattern, text), f"a {kind} is in the log"
