"""What the tests share: the API's paths and answers, accounts and logins, an authenticator's
codes (on the test's clock, or on a real server's wall clock), the requests each flow makes,
the production settings a check runs with, and the log lines an attacker would like to write.

Fixtures live in conftest.py; the processes that end-to-end tests start, in tests/support/.
"""

import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime
from html.parser import HTMLParser

import pyotp
from django.conf import settings
from rest_framework.test import APIClient

from otp_app import crypto, totp
from otp_app.models import Session, UserModel
from otp_app.session_backends.db import stored_key
from tests.support.server import ROOT

# --- The API's paths, as clients call them (no trailing slash) -------------------------------------

REGISTER = "/api/auth/register"
LOGIN = "/api/auth/login"
LOGOUT = "/api/auth/logout"
ME = "/api/auth/me"
GENERATE = "/api/auth/otp/generate"
VERIFY = "/api/auth/otp/verify"
VALIDATE = "/api/auth/otp/validate"
DISABLE = "/api/auth/otp/disable"
RECOVERY_CODES = "/api/auth/otp/recovery-codes"
PASSKEYS = "/api/auth/passkeys"
PASSKEY_REGISTRATION_OPTIONS = "/api/auth/passkeys/registration/options"
PASSKEY_REGISTRATION = "/api/auth/passkeys/registration"
PASSKEY_AUTHENTICATION_OPTIONS = "/api/auth/passkeys/authentication/options"
PASSKEY_AUTHENTICATION = "/api/auth/passkeys/authentication"
SESSIONS = "/api/auth/sessions"
END_OTHER_SESSIONS = "/api/auth/sessions/end-others"
PASSWORD_PATH = "/api/auth/password"

# --- Its answers -------------------------------------------------------------------------------------

REGISTERED = {"status": "success", "message": "Registered successfully, please login"}
EMAIL_TAKEN = {"status": "fail", "message": "User with that email already exists"}
INVALID = {"status": "fail", "message": "Token is invalid or user doesn't exist"}
NOT_ENROLLED = {"status": "fail", "message": "OTP must be verified first"}
UTF8_ONLY = "Request bodies must be UTF-8: send charset=utf-8 or no charset"
# The user as every client reads it; recovery_codes_left came later, beside these.
BASE_USER_KEYS = ["id", "name", "email", "otp_enabled", "otp_verified"]
USER_KEYS = {*BASE_USER_KEYS, "recovery_codes_left", "passkeys", "two_factor_enabled"}

# --- Accounts and logins -----------------------------------------------------------------------------

PASSWORD = "correct horse battery staple"
FERNET_PREFIX = "gAAAAA"  # every Fernet token starts so (version byte and timestamp)


def plain(secret: str) -> str:
    """The base32 secret of a stored (encrypted) one; a base32 secret stays as it is."""
    return crypto.decrypt(secret) if secret.startswith(FERNET_PREFIX) else secret


def make_user(email="ann@example.com", name="Ann", **fields) -> UserModel:
    """A user; base32 secrets given in `otp_secret`/`pending_secret` are stored encrypted, as the app stores them."""
    for field in ("otp_secret", "pending_secret"):
        if fields.get(field) and not fields[field].startswith(FERNET_PREFIX):
            fields[field] = crypto.encrypt(fields[field])
    return UserModel.objects.create_user(email, name, PASSWORD, **fields)


def snapshot(user) -> tuple:
    """What the second factor of `user` is, as stored: a request that changes nothing leaves it equal."""
    row = UserModel.objects.get(pk=user.pk)
    return (
        row.otp_enabled,
        row.otp_verified,
        row.otp_secret,
        row.pending_secret,
        row.last_accepted_step,
        row.failed_attempts,
    )


def login(client: APIClient, email: str, password: str = PASSWORD):
    return client.post(LOGIN, {"email": email, "password": password}, format="json")


def pending_login(email: str) -> APIClient:
    """A new browser whose login of an account with 2FA on waits for its second factor."""
    client = APIClient()
    response = login(client, email)
    assert response.status_code == 200, response.content
    assert response.json()["user"]["otp_enabled"] is True
    return client


def full_login(email: str, secret: str, clock: "Clock") -> APIClient:
    """A new browser with a full session of an account with TOTP on: the password, then a code
    of the next time step (the clock moves on 30 s first, so no two calls share a code)."""
    clock.tick(30)
    client = APIClient()
    assert login(client, email).status_code == 200
    response = validate(client, code_for(secret, clock))
    assert response.status_code == 200, response.content
    return client


# --- Sessions, as their rows and GET sessions name them ---------------------------------------------


def session_key(client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def session_row(client) -> Session:
    """The row of the client's session (the table holds the hash of its key)."""
    return Session.objects.get(session_key=stored_key(session_key(client)))


def public_id(client) -> str:
    """The id GET sessions gives the client's session."""
    return session_row(client).public_id


def iso(moment: float) -> str:
    """A time of the app's clock as the API writes it."""
    return datetime.fromtimestamp(moment, tz=UTC).isoformat().replace("+00:00", "Z")


# --- An authenticator on the test's clock --------------------------------------------------------------


class Clock:
    """The app's clock, under the test's control. `tick` moves it; nothing sleeps."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds

    def step(self) -> int:
        return totp.step_at(self.now)


def code_for(secret: str, clock: Clock, *, steps_ahead: int = 0) -> str:
    """The code of `secret` (base32, or as stored on the user row) at the clock's step."""
    return totp.code_at(secret=plain(secret), step=clock.step() + steps_ahead)


def wrong_code(secret: str, clock: Clock) -> str:
    """Six digits that match no step of the window around the clock's step."""
    window = {code_for(secret, clock, steps_ahead=offset) for offset in (-1, 0, 1)}
    return next(code for code in (f"{n:06d}" for n in range(1_000_000)) if code not in window)


# --- An authenticator on the wall clock, for a real server ---------------------------------------------


def next_code(secret: str) -> str:
    """The code of the next time step: the current one was just used (by otp/verify, say), each
    code is accepted once, and the server's ±1 step window accepts the next."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def wrong_code_now(secret: str) -> str:
    """A code that no step near now matches, whatever the server's window."""
    near = {pyotp.TOTP(secret).at(time.time() + 30 * k) for k in range(-3, 4)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in near)


# --- Recovery codes ------------------------------------------------------------------------------------


def canonical(code: str) -> str:
    """A recovery code as typed in any spelling, reduced to its symbols."""
    return code.replace("-", "").replace(" ", "").upper()


def spellings(code: str) -> set[str]:
    """The ways a recovery code may be written: any of them stored or logged is a leak."""
    return {code, code.upper(), code.lower(), canonical(code), canonical(code).lower(), code.replace("-", " ")}


def wrong_recovery_code(codes) -> str:
    """A recovery code shaped like the real ones, none of `codes`."""
    taken = {canonical(code) for code in codes}
    return next(
        candidate for candidate in ("zzzzz-zzzzz", "yyyyy-yyyyy", "xxxxx-xxxxx") if canonical(candidate) not in taken
    )


# --- Requests of the flow, with DRF's test client -----------------------------------------------------


def generate(client: APIClient, **body):
    return client.post(GENERATE, body, format="json")


def generated_secret(client: APIClient) -> str:
    """A new secret from otp/generate, waiting for otp/verify."""
    response = generate(client)
    assert response.status_code == 200, response.content
    return response.json()["base32"]


def verify(client: APIClient, token, **body):
    return client.post(VERIFY, {"token": token, **body}, format="json")


def validate(client: APIClient, token, **body):
    return client.post(VALIDATE, {"token": token, **body}, format="json")


def disable(client: APIClient, **body):
    return client.post(DISABLE, body, format="json")


def enrol(client: APIClient, clock: Clock) -> tuple[str, dict]:
    """Switch 2FA on through the API for the client's account: (base32, verify's body)."""
    secret = generated_secret(client)
    response = verify(client, code_for(secret, clock))
    assert response.status_code == 200, response.content
    return secret, response.json()


def guess_wrong(
    client: APIClient, user, clock: Clock, times: int, path: str = VALIDATE, secret: str | None = None
) -> None:
    """`times` wrong codes at `path`, each refused as a wrong code (not yet locked)."""
    for _ in range(times):
        response = client.post(path, {"token": wrong_code(secret or user.otp_secret, clock)}, format="json")
        assert response.status_code == 400, response.content
        assert response.json() == INVALID


# --- Passkeys, with a software authenticator (tests/support/authenticator.py) ------------------------


def add_passkey(client: APIClient, authenticator, *, name: str | None = None, **overrides):
    """Ask for creation options and answer them with `authenticator` (`overrides`: its attacks)."""
    options = client.post(PASSKEY_REGISTRATION_OPTIONS)
    assert options.status_code == 200, options.content
    body = {"credential": authenticator.register(options.json()["publicKey"], **overrides)}
    if name is not None:
        body["name"] = name
    return client.post(PASSKEY_REGISTRATION, body, format="json")


def prove_passkey(client: APIClient, authenticator, **overrides):
    """Ask for request options in the client's session and answer them with `authenticator`."""
    options = client.post(PASSKEY_AUTHENTICATION_OPTIONS)
    assert options.status_code == 200, options.content
    answer = authenticator.authenticate(options.json()["publicKey"], **overrides)
    return client.post(PASSKEY_AUTHENTICATION, {"credential": answer}, format="json")


# --- The admin, as a browser fills its forms --------------------------------------------------------------

ADMIN_LOGIN = "/admin/login/"
ADMIN_USERS = "/admin/otp_app/usermodel/"


def admin_login(client, email: str, password: str = PASSWORD, otp_token: str | None = None):
    client.get(ADMIN_LOGIN)  # the CSRF cookie, which the form echoes as a browser would
    csrf = client.cookies.get(settings.CSRF_COOKIE_NAME)
    data = {"username": email, "password": password, "next": "/admin/"}
    if csrf is not None:
        data["csrfmiddlewaretoken"] = csrf.value
    if otp_token is not None:
        data["otp_token"] = otp_token
    return client.post(ADMIN_LOGIN, data)


class _FormFields(HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields, self._select = {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        kind, name = attrs.get("type", "text"), attrs.get("name")
        if tag == "input" and name and kind not in ("submit", "button", "image", "file"):
            if kind not in ("checkbox", "radio") or "checked" in attrs:
                self.fields.setdefault(name, []).append(attrs.get("value") or ("on" if kind == "checkbox" else ""))
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self.fields.setdefault(self._select, []).append(attrs.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def admin_form(page: str) -> dict:
    """What a browser would post back from an admin page's form as it stands: its inputs, ticked
    boxes and selected options (a field given twice, a list)."""
    parser = _FormFields()
    parser.feed(page)
    return {name: values if len(values) > 1 else values[0] for name, values in parser.fields.items()}


def is_logged_in(client) -> bool:
    """Whether the client's session opens the admin."""
    return client.get("/admin/").status_code == 200


# --- Configuration: the service started as an operator would -----------------------------------------

# Production settings that pass the deployment checks.
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "api.example.com",
    "CORS_ALLOWED_ORIGINS": "https://app.example.com",
    "TWOFA_ENCRYPTION_KEYS": "vpKhzrT8lQ5h8x0z3yMCmQ0b8cHY7xBf0v9ZKzq3HUM=",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`manage.py *args` in a new process whose environment is this one's, less the settings a
    test gives itself, plus `env`."""
    unset = ("DEBUG", "SECRET_KEY", "CACHE_URL", "TWOFA_ENCRYPTION_KEYS")
    clean = {key: value for key, value in os.environ.items() if key not in unset}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


# --- Logs ----------------------------------------------------------------------------------------------

# What an attacker would like the log to say, on a line of its own.
FORGED = "security event login_succeeded email=boss@example.com address=127.0.0.1 detail={'second_factor': 'off'}"
BAD_HOST = "Invalid HTTP_HOST header: 'evil.example'"


def forged_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.startswith(FORGED)]


# --- Metrics ---------------------------------------------------------------------------------------------

METRICS = "/metrics"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """The samples of a /metrics answer in Prometheus's text format: {(name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(scraped: dict, name: str, **labels: str) -> float:
    """One sample of `samples(...)`; 0 when absent (a series not counted yet)."""
    return scraped.get((name, frozenset(labels.items())), 0.0)
