"""Forged cross-site requests fail; the React app, Swagger UI and Postman work.

A state-changing request that a browser sends from a page of a foreign origin is refused with
403 JSON, also when the browser attaches the session cookie, and changes nothing. The allowed
front end (CORS_ALLOWED_ORIGINS, http://localhost:3000 by default), the API's own origin and
clients without `Origin` are served, without any CSRF token.
"""

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from otp_app.models import UserModel
from tests.helpers import (
    DISABLE,
    GENERATE,
    LOGIN,
    LOGOUT,
    ME,
    PASSWORD,
    REGISTER,
    VALIDATE,
    VERIFY,
    code_for,
    login,
    snapshot,
)

REACT = "http://localhost:3000"
EVIL = "http://evil.example"

POST_ENDPOINTS = [REGISTER, LOGIN, LOGOUT, GENERATE, VERIFY, VALIDATE, DISABLE]


def short(path: str) -> str:
    return path.removeprefix("/api/auth/")


def assert_refused(response) -> None:
    assert response.status_code == 403, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "fail" and isinstance(body["message"], str) and body["message"]
    # The foreign page may not even read the refusal.
    assert "Access-Control-Allow-Origin" not in response.headers


def assert_cors_allowed(response, origin: str = REACT) -> None:
    assert response["Access-Control-Allow-Origin"] == origin
    assert response["Access-Control-Allow-Credentials"] == "true"


def body_for(path: str, user, clock) -> dict:
    """A body that would succeed for `user` (full session) if the origin were allowed."""
    return {
        REGISTER: {"email": "mallory@example.com", "name": "M", "password": PASSWORD, "passwordConfirm": PASSWORD},
        LOGIN: {"email": user.email, "password": PASSWORD},
        LOGOUT: {},
        GENERATE: {"user_id": str(user.pk), "email": user.email},
        VERIFY: {"user_id": str(user.pk), "token": code_for(user.otp_secret, clock, steps_ahead=1)},
        VALIDATE: {"user_id": str(user.pk), "token": code_for(user.otp_secret, clock, steps_ahead=1)},
        DISABLE: {"user_id": str(user.pk)},
    }[path]


# --- A foreign origin is refused -----------------------------------------------------------------


@pytest.mark.parametrize("path", POST_ENDPOINTS, ids=short)
def test_foreign_origin_is_refused_with_full_session_and_changes_nothing(full_2fa_client, user_with_2fa, clock, path):
    before = snapshot(user_with_2fa)
    users_before = UserModel.objects.count()
    response = full_2fa_client.post(path, body_for(path, user_with_2fa, clock), format="json", HTTP_ORIGIN=EVIL)
    assert_refused(response)
    assert snapshot(user_with_2fa) == before
    assert UserModel.objects.count() == users_before
    # The session survived untouched (logout refused, login did not replace it).
    me = full_2fa_client.get(ME)
    assert me.status_code == 200 and me.json()["user"]["otp_enabled"] is True


@pytest.mark.parametrize("path", POST_ENDPOINTS, ids=short)
def test_foreign_origin_is_refused_without_session(api, user_with_2fa, clock, path):
    assert_refused(api.post(path, body_for(path, user_with_2fa, clock), format="json", HTTP_ORIGIN=EVIL))


def test_foreign_origin_register_creates_no_user(api, db):
    body = {"email": "mallory@example.com", "name": "M", "password": PASSWORD, "passwordConfirm": PASSWORD}
    assert_refused(api.post(REGISTER, body, format="json", HTTP_ORIGIN=EVIL))
    assert not UserModel.objects.exists()


@pytest.mark.parametrize("fixture", ["user", "user_with_2fa"])
def test_foreign_origin_login_opens_no_session(api, clock, request, fixture):
    user = request.getfixturevalue(fixture)
    response = api.post(LOGIN, {"email": user.email, "password": PASSWORD}, format="json", HTTP_ORIGIN=EVIL)
    assert_refused(response)
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert api.get(ME).status_code == 401
    # Not even a pending session: otp/validate without an Origin finds no login to complete.
    if user.otp_enabled:
        assert api.post(VALIDATE, {"token": code_for(user.otp_secret, clock)}, format="json").status_code == 401


def test_foreign_origin_generate_hands_out_no_secret(logged_in_client, user):
    # A plain (no 2FA) full session: generate from a foreign page must not hand out a secret.
    assert_refused(logged_in_client.post(GENERATE, {}, format="json", HTTP_ORIGIN=EVIL))
    user.refresh_from_db()
    assert user.pending_secret == ""


@pytest.mark.parametrize(
    "origin",
    [
        pytest.param(EVIL, id="foreign"),
        pytest.param("null", id="null"),
        pytest.param("http://localhost:3001", id="other-port"),
        pytest.param("https://localhost:3000", id="other-scheme"),
        pytest.param("http://localhost", id="no-port"),
        pytest.param("http://localhost:3000.evil.example", id="allowed-as-prefix"),
        pytest.param("http://evil.localhost:3000", id="subdomain-of-allowed"),
        pytest.param("http://testserver.evil.example", id="own-host-as-prefix"),
        pytest.param("http://testserver:8080", id="own-host-other-port"),
        pytest.param("https://testserver", id="own-host-other-scheme"),
        pytest.param("", id="empty"),
    ],
)
def test_untrusted_origin_is_refused(full_2fa_client, user_with_2fa, origin):
    before = snapshot(user_with_2fa)
    assert_refused(full_2fa_client.post(DISABLE, {}, format="json", HTTP_ORIGIN=origin))
    assert snapshot(user_with_2fa) == before


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"HTTP_REFERER": "http://evil.example/page.html"}, id="foreign-referer"),
        pytest.param({"HTTP_REFERER": "https://localhost:3000/"}, id="referer-other-scheme"),
        pytest.param({"HTTP_SEC_FETCH_SITE": "cross-site"}, id="fetch-metadata-cross-site"),
        pytest.param(
            {"HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_REFERER": "http://testserver/swagger/"},
            id="cross-site-beats-own-referer",
        ),
    ],
)
def test_cross_site_request_without_origin_is_refused(full_2fa_client, user_with_2fa, headers):
    before = snapshot(user_with_2fa)
    assert_refused(full_2fa_client.post(DISABLE, {}, format="json", **headers))
    assert snapshot(user_with_2fa) == before


# --- Trusted callers are served ------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-origin-postman"),
        pytest.param({"HTTP_ORIGIN": REACT}, id="react-app"),
        pytest.param({"HTTP_ORIGIN": "http://testserver"}, id="own-origin-swagger"),
        pytest.param({"HTTP_REFERER": "http://testserver/swagger/"}, id="own-referer"),
        pytest.param({"HTTP_REFERER": REACT + "/login"}, id="react-referer"),
        pytest.param({"HTTP_SEC_FETCH_SITE": "same-origin"}, id="fetch-metadata-same-origin"),
        pytest.param({"HTTP_SEC_FETCH_SITE": "none"}, id="fetch-metadata-none"),
    ],
)
def test_trusted_caller_can_log_in(api, user, clock, headers):
    response = api.post(LOGIN, {"email": user.email, "password": PASSWORD}, format="json", **headers)
    assert response.status_code == 200, response.content
    assert api.get(ME).status_code == 200


@pytest.mark.parametrize("path", POST_ENDPOINTS, ids=short)
def test_allowed_front_end_gets_cors_headers_on_every_endpoint(full_2fa_client, user_with_2fa, clock, path):
    response = full_2fa_client.post(path, body_for(path, user_with_2fa, clock), format="json", HTTP_ORIGIN=REACT)
    assert response.status_code in (200, 201), response.content
    assert_cors_allowed(response)


def test_allowed_front_end_gets_cors_headers_on_errors_too(api, db):
    # The React app shows `data.message` of an error: it must be allowed to read it.
    response = api.post(LOGIN, {"email": "nobody@example.com", "password": "wrong"}, format="json", HTTP_ORIGIN=REACT)
    assert response.status_code == 400
    assert response.json()["message"] == "Incorrect email or password"
    assert_cors_allowed(response)


def test_allowed_front_end_can_read_me(logged_in_client, user):
    response = logged_in_client.get(ME, HTTP_ORIGIN=REACT)
    assert response.status_code == 200
    assert_cors_allowed(response)


def test_allowed_front_end_can_read_the_request_id_and_retry_after(api, db):
    response = api.get(ME, HTTP_ORIGIN=REACT)
    exposed = {name.strip().lower() for name in response["Access-Control-Expose-Headers"].split(",")}
    assert {"x-request-id", "retry-after"} <= exposed
    assert response["X-Request-ID"]


@pytest.mark.parametrize("path", POST_ENDPOINTS, ids=short)
def test_cors_preflight_from_allowed_front_end_succeeds(api, db, path):
    response = api.options(
        path,
        HTTP_ORIGIN=REACT,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )
    assert 200 <= response.status_code < 300
    assert_cors_allowed(response)
    assert "POST" in [m.strip() for m in response["Access-Control-Allow-Methods"].split(",")]
    assert "content-type" in [h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")]


def test_cors_preflight_from_foreign_origin_is_not_allowed(api, db):
    response = api.options(
        LOGIN,
        HTTP_ORIGIN=EVIL,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_no_wildcard_cors(api, user, clock):
    # With credentials, "*" would be both invalid and a leak.
    response = api.post(LOGIN, {"email": user.email, "password": PASSWORD}, format="json", HTTP_ORIGIN=REACT)
    assert response["Access-Control-Allow-Origin"] != "*"


# --- No CSRF token is needed ---------------------------------------------------------------------


def test_react_app_works_without_csrf_token(db, clock):
    """The whole flow with Django's CSRF checks enforced, as the React app sends it: Origin of
    the front end, JSON, no X-CSRFToken / X-XSRF-TOKEN header, cookies kept by the client."""
    app = APIClient(enforce_csrf_checks=True, HTTP_ORIGIN=REACT)

    def post(path, body):
        return app.post(path, body, format="json")

    response = post(
        REGISTER, {"email": "ann@example.com", "name": "Ann", "password": PASSWORD, "passwordConfirm": PASSWORD}
    )
    assert response.status_code == 201, response.content
    response = post(LOGIN, {"email": "ann@example.com", "password": PASSWORD})
    assert response.status_code == 200, response.content
    user = response.json()["user"]
    response = post(GENERATE, {"user_id": user["id"], "email": user["email"]})
    assert response.status_code == 200, response.content
    secret = response.json()["base32"]
    response = post(VERIFY, {"user_id": user["id"], "token": code_for(secret, clock)})
    assert response.status_code == 200, response.content
    clock.tick(30)
    assert post(LOGIN, {"email": "ann@example.com", "password": PASSWORD}).status_code == 200
    response = post(VALIDATE, {"user_id": user["id"], "token": code_for(secret, clock)})
    assert response.status_code == 200, response.content
    response = post(DISABLE, {"user_id": user["id"]})
    assert response.status_code == 200, response.content
    assert post(LOGOUT, {}).status_code == 200
    # axios echoes a CSRF header only if the page can see an XSRF-TOKEN cookie; none is needed.
    assert "XSRF-TOKEN" not in app.cookies


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="postman-no-origin"),
        pytest.param({"HTTP_ORIGIN": "http://testserver"}, id="swagger-own-origin"),
    ],
)
def test_postman_and_swagger_work_without_csrf_token(db, clock, headers):
    client = APIClient(enforce_csrf_checks=True)
    user = UserModel.objects.create_user("ann@example.com", "Ann", PASSWORD)
    assert client.post(LOGIN, {"email": user.email, "password": PASSWORD}, format="json", **headers).status_code == 200
    response = client.post(GENERATE, {}, format="json", **headers)
    assert response.status_code == 200, response.content


def test_foreign_origin_is_refused_with_csrf_checks_enforced(db, clock):
    client = APIClient(enforce_csrf_checks=True)
    user = UserModel.objects.create_user("ann@example.com", "Ann", PASSWORD)
    assert login(client, user.email).status_code == 200
    assert_refused(client.post(GENERATE, {}, format="json", HTTP_ORIGIN=EVIL))
    user.refresh_from_db()
    assert user.pending_secret == ""


def test_session_cookie_is_http_only_and_same_site_lax(api, user, clock):
    response = login(api, user.email)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"]
    assert cookie["samesite"].lower() == "lax"
