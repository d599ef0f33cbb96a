"""Bad input over real HTTP, with bytes no test client would send: a clear 4xx JSON error, never
a 500 or an HTML page (the same through the test client: tests/api/test_bad_input.py)."""

import json
import uuid

import pytest
import requests

from tests.helpers import PASSWORD

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def e2e_api(live_server_url):
    return live_server_url + "/api/auth/"


def assert_http_fail(response: requests.Response, status: int | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "fail" and isinstance(body["message"], str) and body["message"]


@pytest.mark.parametrize(
    "raw, headers, status",
    [
        pytest.param(b'{"email": "a@example.com", "password": "x"}', {}, 415, id="no-content-type"),
        pytest.param(b'{"email": "a\x00", "password": "x"}', {"Content-Type": "application/json"}, 400, id="raw-nul"),
        pytest.param(
            b'{"email": "\xff\xfe", "password": "x"}', {"Content-Type": "application/json"}, 400, id="invalid-utf8"
        ),
        pytest.param(b"[" * 5000, {"Content-Type": "application/json"}, 400, id="deep-nesting"),
        pytest.param(
            b'{"email": "a@example.com", "password": "' + b"x" * (3 * 1024 * 1024) + b'"}',
            {"Content-Type": "application/json"},
            413,
            id="huge",
        ),
        pytest.param(b"email=a&password=b", {"Content-Type": "application/x-www-form-urlencoded"}, 415, id="form"),
    ],
)
def test_bad_body_over_http_is_refused_with_json_error(e2e_api, raw, headers, status):
    assert_http_fail(requests.post(e2e_api + "login", data=raw, headers=headers, timeout=30), status)


def test_huge_chunked_body_over_http_is_not_a_server_error(e2e_api):
    # No Content-Length at all: the size cannot be refused up front, only while reading.
    chunks = (b'{"email": "a@example.com", "password": "' if i == 0 else b"x" * 65536 for i in range(50))
    response = requests.post(e2e_api + "login", data=chunks, headers={"Content-Type": "application/json"}, timeout=30)
    assert_http_fail(response)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_wrong_method_over_http_is_405_json(e2e_api, method):
    assert_http_fail(requests.request(method, e2e_api + "login", timeout=30), 405)


@pytest.mark.parametrize("path", ["unknown", "otp/unknown", "login/extra"])
def test_unknown_api_path_over_http_is_404_json(e2e_api, path):
    assert_http_fail(requests.post(e2e_api + path, json={}, timeout=30), 404)


def test_register_over_http_with_bad_body_creates_no_account(e2e_api):
    email = f"bad-{uuid.uuid4().hex}@example.com"
    raw = json.dumps({"email": email, "name": "N", "password": PASSWORD, "passwordConfirm": "different"}).encode()
    assert_http_fail(
        requests.post(e2e_api + "register", data=raw, headers={"Content-Type": "application/json"}, timeout=30), 400
    )
    response = requests.post(e2e_api + "login", json={"email": email, "password": PASSWORD}, timeout=30)
    assert_http_fail(response, 400)
    assert response.json()["message"] == "Incorrect email or password"
