"""Bad input gets a clear 4xx JSON error, never a 500 or an HTML page.

Every error body is `{"status": "fail", "message": <str>}` with Content-Type application/json.
Each table below has one row per bad input; every row runs against every endpoint it applies to.
The protected endpoints are called with a full session, so what refuses the input is the input
check, not the session check. The same over real HTTP, with bytes no test client would send:
tests/e2e/test_bad_input.py.
"""

import json

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from otp_app.models import UserModel
from tests.helpers import DISABLE, GENERATE, LOGIN, LOGOUT, ME, PASSWORD, REGISTER, VALIDATE, VERIFY, code_for

BODY_ENDPOINTS = [REGISTER, LOGIN, GENERATE, VERIFY, VALIDATE, DISABLE]
PROTECTED = {GENERATE, VERIFY, VALIDATE, DISABLE}
POST_ENDPOINTS = [REGISTER, LOGIN, LOGOUT, GENERATE, VERIFY, VALIDATE, DISABLE]

# The string fields of each endpoint; `user_id` has its own table (malformed UUIDs).
STRING_FIELDS = {
    REGISTER: ["email", "name", "password", "passwordConfirm"],
    LOGIN: ["email", "password"],
    GENERATE: ["email"],
    VERIFY: ["token"],
    VALIDATE: ["token"],
}
REQUIRED_FIELDS = {
    REGISTER: ["email", "name", "password"],
    LOGIN: ["email", "password"],
    VERIFY: ["token"],
    VALIDATE: ["token"],
}
# Fields that do not accept null (user_id and generate's ignored email do).
NOT_NULL_FIELDS = {
    REGISTER: ["email", "name", "password", "passwordConfirm"],
    LOGIN: ["email", "password"],
    VERIFY: ["token"],
    VALIDATE: ["token"],
}
MAX_LENGTH = {"email": 255, "name": 255, "password": 128, "passwordConfirm": 128, "token": 64}


def rows(table: dict) -> list:
    return [
        pytest.param(path, field, id=f"{path.removeprefix('/api/auth/')}-{field}")
        for path, fields in table.items()
        for field in fields
    ]


def assert_fail(response, status: int | None = None) -> dict:
    """A 4xx (or exactly `status`) with the JSON error envelope and a string message."""
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    if status is not None:
        assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    assert b"<html" not in response.content.lower()
    body = json.loads(response.content)
    assert body["status"] == "fail"
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.fixture
def call(request, db, clock):
    """`call(path)` returns (client, valid body) for that endpoint: anonymous for register and
    login, a full 2FA session for the others."""

    def for_path(path):
        if path not in PROTECTED:
            client = request.getfixturevalue("api")
            if path == REGISTER:
                return client, {
                    "email": "new@example.com",
                    "name": "New",
                    "password": PASSWORD,
                    "passwordConfirm": PASSWORD,
                }
            user = request.getfixturevalue("user")
            return client, {"email": user.email, "password": PASSWORD}
        client = request.getfixturevalue("full_2fa_client")
        user = request.getfixturevalue("user_with_2fa")
        body = {"user_id": str(user.pk)}
        if path == GENERATE:
            body["email"] = user.email
        if path in (VERIFY, VALIDATE):
            body["token"] = "000000"
        return client, body

    return for_path


def post_raw(client, path, raw: bytes, content_type="application/json"):
    return client.generic("POST", path, raw, content_type=content_type)


# --- Fields --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path, field", rows(REQUIRED_FIELDS))
def test_missing_required_field_is_400(call, path, field):
    client, body = call(path)
    del body[field]
    body = assert_fail(client.post(path, body, format="json"), 400)
    assert field in body["errors"]


@pytest.mark.parametrize("path, field", rows(NOT_NULL_FIELDS))
def test_null_field_is_400(call, path, field):
    client, body = call(path)
    body[field] = None
    body = assert_fail(client.post(path, body, format="json"), 400)
    assert field in body["errors"]


@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param(True, id="true"),
        pytest.param(False, id="false"),
        pytest.param([], id="empty-list"),
        pytest.param(["abc"], id="list"),
        pytest.param({}, id="empty-object"),
        pytest.param({"value": "abc"}, id="object"),
        # A number is not a string: DRF's CharField would quietly turn 42 into "42".
        pytest.param(42, id="integer"),
        pytest.param(1.5, id="float"),
    ],
)
@pytest.mark.parametrize("path, field", rows(STRING_FIELDS))
def test_string_field_of_wrong_type_is_400(call, path, field, wrong):
    client, body = call(path)
    body[field] = wrong
    body = assert_fail(client.post(path, body, format="json"), 400)
    # Refused as a type error of that field, not by luck (a wrong password, a wrong code).
    assert field in body.get("errors", {}), body


@pytest.mark.parametrize("path, field", rows(STRING_FIELDS))
def test_overlong_string_field_is_400(call, path, field):
    client, body = call(path)
    body[field] = "1" * (MAX_LENGTH[field] + 1)
    if field == "email":
        body[field] = "a" * MAX_LENGTH[field] + "@example.com"
    body = assert_fail(client.post(path, body, format="json"), 400)
    assert field in body["errors"]


@pytest.mark.parametrize("path, field", rows(STRING_FIELDS))
def test_nul_character_in_string_field_is_400(call, path, field):
    client, body = call(path)
    body[field] = "123\u0000456" if field == "token" else f"{body.get(field) or 'x'}\u0000"
    body = assert_fail(client.post(path, body, format="json"), 400)
    assert field in body["errors"]


@pytest.mark.parametrize("path, field", rows(STRING_FIELDS))
def test_lone_surrogate_in_string_field_is_400(call, path, field):
    # "\ud800" is valid JSON but no valid text; it must not reach the database or the cache.
    client, body = call(path)
    body[field] = "\\ud800"
    raw = json.dumps(body).replace("\\\\ud800", "\\ud800").encode()
    assert_fail(post_raw(client, path, raw), 400)


@pytest.mark.parametrize(
    "user_id",
    [
        pytest.param("not-a-uuid", id="word"),
        pytest.param("", id="empty"),
        pytest.param("123", id="digits"),
        pytest.param("12345678-1234-5678-1234-56781234567", id="one-char-short"),
        pytest.param("12345678-1234-5678-1234-5678123456789", id="one-char-long"),
        pytest.param("g2345678-1234-5678-1234-567812345678", id="not-hex"),
        pytest.param("12345678-1234-5678-1234-56781234567\u0000", id="nul"),
        pytest.param("x" * 10_000, id="overlong"),
        pytest.param(1.5, id="float"),
        pytest.param([], id="list"),
        pytest.param({}, id="object"),
        # JSON numbers and booleans are not UUID strings either (DRF's UUIDField reads ints as UUIDs).
        pytest.param(5, id="integer"),
        pytest.param(True, id="true"),
    ],
)
@pytest.mark.parametrize("path", sorted(PROTECTED), ids=lambda path: path.removeprefix("/api/auth/"))
def test_malformed_user_id_is_400(call, path, user_id):
    client, body = call(path)
    body["user_id"] = user_id
    body = assert_fail(client.post(path, body, format="json"), 400)
    assert "user_id" in body["errors"]


# --- Whole bodies --------------------------------------------------------------------------------


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


WHOLE_BODIES = [
    # (id, raw body, content type, expected status)
    ("malformed-json", b'{"email": ', "application/json", 400),
    ("trailing-comma", b'{"email": "a@example.com",}', "application/json", 400),
    ("single-quotes", b"{'email': 'a@example.com'}", "application/json", 400),
    ("nan", b'{"email": NaN, "token": NaN, "name": NaN}', "application/json", 400),
    ("json-array", b"[]", "application/json", 400),
    ("json-array-of-object", b'[{"email": "a@example.com"}]', "application/json", 400),
    ("json-string", b'"hello"', "application/json", 400),
    ("json-null", b"null", "application/json", 400),
    ("json-number", b"42", "application/json", 400),
    ("json-true", b"true", "application/json", 400),
    ("raw-nul-in-string", b'{"email": "a\x00@example.com", "token": "12\x003456"}', "application/json", 400),
    ("raw-nul-alone", b"\x00", "application/json", 400),
    ("raw-nul-after-json", b"{}\x00", "application/json", 400),
    ("invalid-utf8", b'{"email": "\xff\xfe\xfa", "token": "\xc3\x28"}', "application/json", 400),
    ("utf8-bom", b"\xef\xbb\xbf{}", "application/json", 400),
    ("unclosed-nesting", b"[" * 5000, "application/json", 400),
    ("deep-nesting", _nested(5000), "application/json", 400),
    ("deep-nesting-in-field", b'{"email": ' + _nested(3000) + b"}", "application/json", 400),
    ("form-encoded", b"email=a%40example.com&password=x&token=123456", "application/x-www-form-urlencoded", 415),
    ("text-plain", b'{"email": "a@example.com"}', "text/plain", 415),
    ("xml", b"<login><email>a@example.com</email></login>", "application/xml", 415),
    ("no-content-type", b'{"email": "a@example.com"}', "", 415),
    (
        "multipart",
        b'--b\r\nContent-Disposition: form-data; name="email"\r\n\r\na\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
        415,
    ),
]


@pytest.mark.parametrize("raw, content_type, status", [pytest.param(*row[1:], id=row[0]) for row in WHOLE_BODIES])
@pytest.mark.parametrize("path", BODY_ENDPOINTS)
def test_bad_body_is_refused_with_json_error(call, path, raw, content_type, status):
    client, _ = call(path)
    assert_fail(post_raw(client, path, raw, content_type), status)


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(lambda: settings.TWOFA_MAX_BODY_BYTES + 1, id="just-over-limit"),
        pytest.param(lambda: 3 * 1024 * 1024, id="over-django-upload-limit"),
    ],
)
@pytest.mark.parametrize("path", BODY_ENDPOINTS)
def test_huge_body_is_413(call, path, size):
    client, body = call(path)
    padding = size() - len(json.dumps({**body, "padding": ""}))
    raw = json.dumps({**body, "padding": "x" * padding}).encode()
    assert len(raw) > settings.TWOFA_MAX_BODY_BYTES
    assert_fail(post_raw(client, path, raw), 413)


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
def test_huge_string_field_is_413(call, path):
    client, body = call(path)
    field = (STRING_FIELDS.get(path) or ["user_id"])[0]
    body[field] = "a" * (settings.TWOFA_MAX_BODY_BYTES + 1)
    assert_fail(client.post(path, body, format="json"), 413)


# --- Methods and paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
@pytest.mark.parametrize("path", POST_ENDPOINTS)
def test_wrong_method_on_post_endpoint_is_405_without_session(api, db, path, method):
    response = getattr(api, method)(path)
    assert_fail(response, 405)
    assert "POST" in response["Allow"]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_wrong_method_on_me_is_405_without_session(api, db, method):
    response = getattr(api, method)(ME, {}, format="json")
    assert_fail(response, 405)
    assert "GET" in response["Allow"]


@pytest.mark.parametrize("method", ["put", "delete"])
@pytest.mark.parametrize("path", [GENERATE, DISABLE])
def test_wrong_method_is_405_with_full_session_and_changes_nothing(full_2fa_client, user_with_2fa, path, method):
    assert_fail(getattr(full_2fa_client, method)(path, {}, format="json"), 405)
    user_with_2fa.refresh_from_db()
    assert user_with_2fa.otp_enabled and user_with_2fa.pending_secret == ""


@pytest.mark.parametrize(
    "path",
    [
        "/api/",
        "/api/unknown",
        "/api/auth/",
        "/api/auth/unknown",
        "/api/auth/otp/",
        "/api/auth/otp/unknown",
        "/api/auth/login/extra",
        "/api/auth/login//",
        "/api/auth/LOGIN",
        "/api/v2/auth/login",
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_unknown_api_path_is_404_json(db, path, method):
    # A real server enforces Django's CSRF middleware, so the test client must too: a POST
    # to an unknown path must still be the JSON 404, not Django's HTML "CSRF verification failed".
    client = APIClient(enforce_csrf_checks=True)
    assert_fail(getattr(client, method)(path, {}, format="json"), 404)


def test_login_with_trailing_slash_works(api, user, clock):
    response = api.post(LOGIN + "/", {"email": user.email, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["user"]["email"] == user.email


@pytest.mark.parametrize("path", [REGISTER, GENERATE, VERIFY, DISABLE])
def test_other_endpoints_with_trailing_slash_are_routed(api, db, path):
    # Without a session the protected ones answer 401, the router found them: not 404, no redirect.
    response = api.post(path + "/", {}, format="json")
    assert response.status_code in (400, 401), response.content
    assert_fail(response)


def test_me_with_trailing_slash_works(logged_in_client, user):
    response = logged_in_client.get(ME + "/")
    assert response.status_code == 200
    assert response.json()["user"]["id"] == str(user.pk)


# --- Nothing half-written ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {"email": "new@example.com", "name": "New", "password": PASSWORD, "passwordConfirm": PASSWORD + "x"},
            id="confirm-differs",
        ),
        pytest.param({"email": "new@example.com", "name": "New", "password": "password"}, id="common-password"),
        pytest.param({"email": "new@example.com", "name": "New", "password": "short"}, id="short-password"),
        pytest.param({"email": "new@example.com", "name": "New", "password": "48392017465"}, id="numeric-password"),
        pytest.param({"email": "not-an-email", "name": "New", "password": PASSWORD}, id="invalid-email"),
        pytest.param({"email": "new@example.com", "password": PASSWORD}, id="no-name"),
        pytest.param({"email": "new@example.com", "name": "New"}, id="no-password"),
        pytest.param({"email": "new@example.com", "name": "New\u0000", "password": PASSWORD}, id="nul-in-name"),
        pytest.param({"email": "new@example.com", "name": ["New"], "password": PASSWORD}, id="list-name"),
        pytest.param({"email": "new@example.com", "name": "x" * 256, "password": PASSWORD}, id="overlong-name"),
    ],
)
def test_register_that_fails_validation_creates_no_user(api, db, body):
    assert_fail(api.post(REGISTER, body, format="json"), 400)
    assert not UserModel.objects.exists()


def test_register_with_huge_body_creates_no_user(api, db):
    body = {"email": "new@example.com", "name": "x" * settings.TWOFA_MAX_BODY_BYTES, "password": PASSWORD}
    assert_fail(api.post(REGISTER, body, format="json"), 413)
    assert not UserModel.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"token": "000000"}, id="wrong-code"),
        pytest.param({"token": None}, id="null-code"),
        pytest.param({}, id="no-code"),
        pytest.param({"token": ["123456"]}, id="list-code"),
        pytest.param({"token": "12345"}, id="short-code"),
        pytest.param({"token": "abcdef"}, id="letters"),
        pytest.param({"token": "123456", "user_id": "not-a-uuid"}, id="malformed-user-id"),
    ],
)
def test_failed_verify_leaves_2fa_off(logged_in_client, user, clock, body):
    secret = logged_in_client.post(GENERATE, {}, format="json").json()["base32"]
    if body.get("token") == "000000" and code_for(secret, clock) == "000000":
        body = {"token": "999999"}
    assert_fail(logged_in_client.post(VERIFY, body, format="json"))
    user.refresh_from_db()
    assert user.otp_enabled is False
    assert user.otp_verified is False
    assert user.otp_secret == ""
    assert logged_in_client.get(ME).json()["user"]["otp_enabled"] is False


def test_verify_with_malformed_user_id_and_right_code_leaves_2fa_off(logged_in_client, user, clock):
    secret = logged_in_client.post(GENERATE, {}, format="json").json()["base32"]
    response = logged_in_client.post(VERIFY, {"user_id": "not-a-uuid", "token": code_for(secret, clock)}, format="json")
    assert_fail(response, 400)
    user.refresh_from_db()
    assert user.otp_enabled is False


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"user_id": "not-a-uuid"}, id="malformed-user-id"),
        pytest.param({"user_id": ["x"]}, id="list-user-id"),
    ],
)
def test_failed_disable_leaves_2fa_on(full_2fa_client, user_with_2fa, body):
    secret = user_with_2fa.otp_secret
    assert_fail(full_2fa_client.post(DISABLE, body, format="json"), 400)
    user_with_2fa.refresh_from_db()
    assert user_with_2fa.otp_enabled is True
    assert user_with_2fa.otp_secret == secret


def test_failed_generate_hands_out_no_secret(full_2fa_client, user_with_2fa):
    assert_fail(full_2fa_client.post(GENERATE, {"email": ["x"]}, format="json"), 400)
    user_with_2fa.refresh_from_db()
    assert user_with_2fa.pending_secret == ""


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": "ann@example.com"}, id="no-password"),
        pytest.param({"email": "ann@example.com", "password": None}, id="null-password"),
        pytest.param({"email": ["ann@example.com"], "password": PASSWORD}, id="list-email"),
        pytest.param({"email": "ann@example.com", "password": PASSWORD + "\u0000"}, id="nul-in-password"),
    ],
)
def test_login_with_bad_input_opens_no_session(api, user, clock, body):
    response = api.post(LOGIN, body, format="json")
    assert_fail(response, 400)
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert api.get(ME).status_code == 401
