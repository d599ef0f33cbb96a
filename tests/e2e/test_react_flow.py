"""The React app's whole journey over real HTTP, sent exactly as the app sends it.

Every request carries `Origin: http://localhost:3000` and `Content-Type: application/json`, no
CSRF header, no trailing slash; the cookie jar of a requests.Session plays the browser's
(`withCredentials: true`). Each answer must have its documented shape and the CORS
headers that let the app read it. The same requests from a foreign origin are refused.
"""

import json
import uuid

import pyotp
import pytest
import requests
from django.conf import settings

from tests.helpers import PASSWORD, USER_KEYS, next_code

pytestmark = pytest.mark.e2e

REACT = "http://localhost:3000"
EVIL = "http://evil.example"
TIMEOUT = 30


class Browser:
    """A page of `origin` calling the API the way axios does: JSON bodies, the cookie jar."""

    def __init__(self, api: str, origin: str, cookies=None):
        self.api = api
        self.origin = origin
        self.session = requests.Session()
        if cookies is not None:
            self.session.cookies.update(cookies)

    def post(self, path: str, body: dict) -> requests.Response:
        return self.session.post(
            self.api + path,
            data=json.dumps(body),
            headers={"Origin": self.origin, "Content-Type": "application/json"},
            timeout=TIMEOUT,
        )

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.api + path, headers={"Origin": self.origin}, timeout=TIMEOUT)

    def preflight(self, path: str) -> requests.Response:
        return self.session.options(
            self.api + path,
            headers={
                "Origin": self.origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
            timeout=TIMEOUT,
        )


@pytest.fixture(scope="module")
def api(live_server_url):
    return live_server_url + "/api/auth/"


def assert_cors(response: requests.Response) -> None:
    assert response.headers.get("Access-Control-Allow-Origin") == REACT, response.headers
    assert response.headers.get("Access-Control-Allow-Credentials") == "true", response.headers


def assert_user(user: dict, *, email: str, otp_enabled: bool) -> None:
    assert set(user) == USER_KEYS
    uuid.UUID(user["id"])
    assert user["email"] == email
    assert user["name"] == "React User"
    assert user["otp_enabled"] is otp_enabled
    assert user["otp_verified"] is otp_enabled


def assert_no_secret(response: requests.Response, secret: str | None = None) -> None:
    assert "otpauth" not in response.text and "base32" not in response.text
    if secret:
        assert secret not in response.text


def test_react_app_journey_register_login_enrol_validate_disable(api):
    email = f"react-{uuid.uuid4().hex}@example.com"
    app = Browser(api, REACT)

    for path in ["register", "login", "otp/generate", "otp/verify", "otp/validate", "otp/disable"]:
        response = app.preflight(path)
        assert response.status_code == 200, (path, response.status_code)
        assert_cors(response)
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()

    response = app.post(
        "register", {"email": email, "name": "React User", "password": PASSWORD, "passwordConfirm": PASSWORD}
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"status": "success", "message": "Registered successfully, please login"}
    assert_cors(response)

    response = app.post("login", {"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert_cors(response)
    body = response.json()
    assert set(body) == {"status", "user"} and body["status"] == "success"
    assert_user(body["user"], email=email, otp_enabled=False)
    assert_no_secret(response)
    user_id = body["user"]["id"]
    cookie = response.headers["Set-Cookie"]
    assert f"{settings.SESSION_COOKIE_NAME}=" in cookie
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie

    response = app.post("otp/generate", {"user_id": user_id, "email": email})
    assert response.status_code == 200, response.text
    assert_cors(response)
    body = response.json()
    # The secret in both forms an authenticator takes, and the server-rendered QR code.
    assert set(body) == {"base32", "otpauth_url", "qr_code"}
    secret = body["base32"]
    assert body["otpauth_url"].startswith("otpauth://totp/")
    assert f"secret={secret}" in body["otpauth_url"] and "issuer=" in body["otpauth_url"]

    response = app.post("otp/verify", {"user_id": user_id, "token": pyotp.TOTP(secret).now()})
    assert response.status_code == 200, response.text
    assert_cors(response)
    body = response.json()
    assert set(body) == {"otp_verified", "user", "recovery_codes"} and body["otp_verified"] is True
    assert_user(body["user"], email=email, otp_enabled=True)
    assert_no_secret(response, secret)

    # Next visit: login, the app sees otp_enabled and asks for a code.
    response = app.post("login", {"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert_cors(response)
    body = response.json()
    assert set(body) == {"status", "user"} and body["status"] == "success"
    assert_user(body["user"], email=email, otp_enabled=True)
    assert_no_secret(response, secret)
    # Pending: the password alone opens nothing else.
    assert app.post("otp/disable", {"user_id": user_id}).status_code == 403

    response = app.post("otp/validate", {"user_id": user_id, "token": next_code(secret)})
    assert response.status_code == 200, response.text
    assert_cors(response)
    assert response.json() == {"otp_valid": True}

    response = app.get("me")
    assert response.status_code == 200
    assert_cors(response)
    assert_user(response.json()["user"], email=email, otp_enabled=True)

    response = app.post("otp/disable", {"user_id": user_id})
    assert response.status_code == 200, response.text
    assert_cors(response)
    body = response.json()
    assert set(body) == {"otp_disabled", "user"} and body["otp_disabled"] is True
    assert_user(body["user"], email=email, otp_enabled=False)
    assert_no_secret(response, secret)

    # The app never needed a CSRF token, and axios would only echo one it could see.
    assert "XSRF-TOKEN" not in app.session.cookies


def test_react_app_sees_readable_errors(api):
    app = Browser(api, REACT)
    response = app.post("login", {"email": f"nobody-{uuid.uuid4().hex}@example.com", "password": "wrong password"})
    assert response.status_code == 400
    assert_cors(response)
    assert response.json() == {"status": "fail", "message": "Incorrect email or password"}


@pytest.fixture
def enrolled(api):
    """A user with 2FA on and a full session opened by the React app: (app, email, secret, user_id)."""
    email = f"react-evil-{uuid.uuid4().hex}@example.com"
    app = Browser(api, REACT)
    assert app.post("register", {"email": email, "name": "React User", "password": PASSWORD}).status_code == 201
    user_id = app.post("login", {"email": email, "password": PASSWORD}).json()["user"]["id"]
    secret = app.post("otp/generate", {}).json()["base32"]
    assert app.post("otp/verify", {"token": pyotp.TOTP(secret).now()}).status_code == 200
    return app, email, secret, user_id


def assert_refused(response: requests.Response) -> None:
    assert response.status_code == 403, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "fail" and isinstance(body["message"], str) and body["message"]
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(
    "path, body",
    [
        pytest.param("login", lambda email, secret, user_id: {"email": email, "password": PASSWORD}, id="login"),
        pytest.param("logout", lambda email, secret, user_id: {}, id="logout"),
        pytest.param(
            "otp/generate", lambda email, secret, user_id: {"user_id": user_id, "email": email}, id="generate"
        ),
        pytest.param(
            "otp/verify",
            lambda email, secret, user_id: {"user_id": user_id, "token": next_code(secret)},
            id="verify",
        ),
        pytest.param(
            "otp/validate",
            lambda email, secret, user_id: {"user_id": user_id, "token": next_code(secret)},
            id="validate",
        ),
        pytest.param("otp/disable", lambda email, secret, user_id: {"user_id": user_id}, id="disable"),
    ],
)
def test_same_requests_from_foreign_origin_with_the_cookie_are_refused(api, enrolled, path, body):
    app, email, secret, user_id = enrolled
    evil = Browser(api, EVIL, cookies=app.session.cookies)  # the browser attaches the cookie anyway
    assert_refused(evil.post(path, body(email, secret, user_id)))
    # Nothing changed: the session is still full, 2FA still on with the same secret.
    response = app.get("me")
    assert response.status_code == 200
    assert response.json()["user"]["otp_enabled"] is True
    fresh = Browser(api, REACT)
    assert fresh.post("login", {"email": email, "password": PASSWORD}).status_code == 200
    assert fresh.post("otp/validate", {"token": next_code(secret)}).status_code == 200


def test_register_from_foreign_origin_is_refused_and_creates_no_account(api):
    email = f"react-evil-{uuid.uuid4().hex}@example.com"
    assert_refused(Browser(api, EVIL).post("register", {"email": email, "name": "React User", "password": PASSWORD}))
    response = Browser(api, REACT).post("login", {"email": email, "password": PASSWORD})
    assert response.status_code == 400
    assert response.json()["message"] == "Incorrect email or password"


def test_preflight_from_foreign_origin_is_not_allowed(api):
    response = Browser(api, EVIL).preflight("login")
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Credentials" not in response.headers
