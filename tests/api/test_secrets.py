"""No response but otp/generate carries a TOTP secret or an otpauth URL, and no
log record carries a secret or a password. The recovery codes, secrets too, appear only in the
one otp/verify answer that switched 2FA on.

One full flow drives every endpoint, successes and failures alike, and keeps every response.
"""

import logging

import pytest
from rest_framework.test import APIClient

from otp_app.models import UserModel
from tests.helpers import PASSWORD, USER_KEYS, code_for, wrong_code

API = "/api/auth/"
EMAIL = "secretive@example.com"


class Recorder:
    """An API client that keeps every response, and every secret otp/generate handed out."""

    def __init__(self):
        self.client = APIClient()
        self.responses = []  # (path, response), otp/generate excluded
        self.generated = []  # (secret, response)
        self.recovery_codes = []  # from the otp/verify answer that switched 2FA on
        self.enabling = None  # that answer

    def post(self, path, body=None, **kwargs):
        response = self.client.post(API + path, body or {}, format="json", **kwargs)
        self._keep(path, response)
        return response

    def get(self, path):
        response = self.client.get(API + path)
        self._keep(path, response)
        return response

    def raw(self, path, data, content_type):
        response = self.client.post(API + path, data, content_type=content_type)
        self._keep(path, response)
        return response

    def new_device(self):
        self.client = APIClient()

    def _keep(self, path, response):
        if path == "otp/generate" and response.status_code == 200:
            self.generated.append((response.json()["base32"], response))
        elif path == "otp/verify" and response.status_code == 200 and "recovery_codes" in response.json():
            assert self.enabling is None, "recovery codes were handed out twice"
            self.enabling = response
            self.recovery_codes = response.json()["recovery_codes"]
        else:
            self.responses.append((path, response))

    @property
    def secrets(self):
        return [secret for secret, _ in self.generated]


def run_full_flow(clock) -> Recorder:
    """Register, enrol, log in with 2FA, re-enrol, fail in every known way, disable, log out."""
    api = Recorder()
    body = {"email": EMAIL, "name": "Sam", "password": PASSWORD, "passwordConfirm": PASSWORD}
    assert api.post("register", body).status_code == 201
    assert api.post("register", {**body, "email": EMAIL.upper()}).status_code == 409
    assert api.post("register", {"email": "not-an-email", "name": "", "password": "1"}).status_code == 400
    assert api.post("login", {"email": EMAIL, "password": "wrong password"}).status_code == 400
    assert api.post("otp/generate").status_code == 401  # not logged in yet
    assert api.post("login", {"email": EMAIL, "password": PASSWORD}).status_code == 200
    user_id = api.get("me").json()["user"]["id"]
    assert api.post("otp/validate", {"token": "123456"}).status_code == 404  # no 2FA yet
    assert api.post("otp/verify", {"token": "123456"}).status_code == 400  # nothing generated

    first = api.post("otp/generate", {"user_id": user_id, "email": EMAIL})
    assert first.status_code == 200
    first_secret = api.secrets[-1]
    assert api.post("otp/verify", {"token": wrong_code(first_secret, clock)}).status_code == 400
    assert api.post("otp/verify", {"user_id": "00000000-0000-0000-0000-000000000000", "token": "1"}).status_code == 403
    assert api.post("otp/verify", {"user_id": "nope", "token": "1"}).status_code == 400
    assert api.post("otp/verify", {"user_id": user_id, "token": code_for(first_secret, clock)}).status_code == 200
    assert api.get("me").status_code == 200
    assert api.post("logout").status_code == 200

    clock.tick(30)
    api.new_device()
    assert api.post("login", {"email": EMAIL, "password": PASSWORD}).status_code == 200  # pending
    assert api.get("me").status_code == 403
    assert api.post("otp/generate").status_code == 403
    assert api.post("otp/disable").status_code == 403
    assert api.post("otp/validate", {"token": wrong_code(first_secret, clock)}).status_code == 400
    assert api.post("otp/validate", {"token": code_for(first_secret, clock)}).status_code == 200
    assert api.post("otp/validate", {"token": code_for(first_secret, clock)}).status_code == 400  # replay
    assert api.get("me").status_code == 200

    # Re-enrolment while 2FA is on: a second secret, then verified.
    clock.tick(30)
    assert api.post("otp/generate", {"email": "someone@else.example"}).status_code == 200
    second_secret = api.secrets[-1]
    assert api.post("otp/verify", {"token": code_for(second_secret, clock)}).status_code == 200

    # Lockout, on both endpoints.
    for _ in range(5):
        assert api.post("otp/validate", {"token": wrong_code(second_secret, clock)}).status_code == 400
    assert api.post("otp/validate", {"token": code_for(second_secret, clock)}).status_code == 429
    assert api.post("otp/verify", {"token": code_for(second_secret, clock)}).status_code == 429
    clock.tick(30)

    # A recovery code stands in for the phone once.
    api.new_device()
    assert api.post("login", {"email": EMAIL, "password": PASSWORD}).status_code == 200
    assert len(api.recovery_codes) == 10
    assert api.post("otp/validate", {"token": api.recovery_codes[0]}).status_code == 200
    api.new_device()
    assert api.post("login", {"email": EMAIL, "password": PASSWORD}).status_code == 200
    assert api.post("otp/validate", {"token": api.recovery_codes[0]}).status_code == 400  # used
    assert api.post("otp/validate", {"token": api.recovery_codes[1].upper()}).status_code == 200

    # Bad input and wrong methods.
    assert api.raw("otp/validate", b"{not json", "application/json").status_code == 400
    assert api.raw("otp/validate", b"token=123456", "application/x-www-form-urlencoded").status_code in (400, 415)
    assert api.post("otp/validate", {"token": None}).status_code == 400
    assert api.get("otp/validate").status_code == 405
    assert api.post("nowhere").status_code == 404

    assert api.post("otp/disable", {"user_id": user_id}).status_code == 200
    assert api.post("otp/validate", {"token": code_for(second_secret, clock)}).status_code == 404
    assert api.post("logout").status_code == 200
    assert api.get("me").status_code in (401, 403)
    return api


def everything_said(response) -> str:
    headers = "\n".join(f"{name}: {value}" for name, value in response.items())
    return f"{headers}\n{response.content.decode('utf-8', 'replace')}"


@pytest.fixture
def flow(db, clock):
    return run_full_flow(clock)


def test_the_flow_hands_out_two_secrets_from_generate(flow):
    assert len(flow.secrets) == 2
    for secret, response in flow.generated:
        assert f"secret={secret}" in response.json()["otpauth_url"]


def test_no_response_but_generate_contains_a_secret(flow):
    assert len(flow.responses) > 30
    for path, response in flow.responses:
        said = everything_said(response)
        for secret in flow.secrets:
            assert secret not in said, f"{path} ({response.status_code}) leaks a TOTP secret"
            assert secret.lower() not in said.lower(), f"{path} ({response.status_code}) leaks a TOTP secret"


def test_no_response_but_generate_contains_an_otpauth_url(flow):
    for path, response in flow.responses:
        assert "otpauth" not in everything_said(response).lower(), f"{path} ({response.status_code})"


def test_no_response_contains_the_password(flow):
    for path, response in [*flow.responses, *((("otp/generate", r) for _, r in flow.generated))]:
        assert PASSWORD not in everything_said(response), path


def test_every_user_in_a_response_has_only_the_documented_keys(flow):
    users = [response.json()["user"] for _, response in flow.responses if "user" in response.json()]
    assert len(users) >= 6  # login x2, me x3, verify x2, disable
    for user in users:
        assert set(user) == USER_KEYS


def test_every_error_body_is_the_envelope_with_a_string_message(flow):
    errors = [(path, response) for path, response in flow.responses if response.status_code >= 400]
    assert {response.status_code for _, response in errors} >= {400, 401, 403, 404, 405, 409, 429}
    for path, response in errors:
        body = response.json()
        assert body["status"] == "fail", path
        assert isinstance(body["message"], str), path


def test_no_response_but_the_enabling_verify_contains_a_recovery_code(flow):
    assert flow.enabling is not None and len(flow.recovery_codes) == 10
    everything = [*flow.responses, *((("otp/generate", r) for _, r in flow.generated))]
    for path, response in everything:
        said = everything_said(response).lower()
        for code in flow.recovery_codes:
            assert code.lower() not in said, f"{path} ({response.status_code}) leaks a recovery code"
            assert code.replace("-", "").lower() not in said, f"{path} ({response.status_code})"


def test_disable_at_the_end_of_the_flow_left_no_secret_on_the_account(flow):
    stored = UserModel.objects.get(email=EMAIL)
    assert stored.otp_secret == "" and stored.pending_secret == ""


def test_the_database_row_never_holds_the_base32_secret(logged_in_client, user, clock):
    secret = logged_in_client.post(API + "otp/generate", {}, format="json").json()["base32"]
    row = UserModel.objects.filter(pk=user.pk).values().get()
    assert not any(secret in str(value) for value in row.values())
    assert (
        logged_in_client.post(API + "otp/verify", {"token": code_for(secret, clock)}, format="json").status_code == 200
    )
    row = UserModel.objects.filter(pk=user.pk).values().get()
    assert not any(secret in str(value) for value in row.values())


def test_no_log_record_contains_a_secret_or_the_password(db, clock, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("django", "otp_app", "rest_framework", "django_ratelimit"):
        caplog.set_level(logging.DEBUG, logger=name)
    flow = run_full_flow(clock)

    assert caplog.records, "the flow's 4xx answers should at least be logged by django.request"
    assert any(record.name.startswith("otp_app") for record in caplog.records), "the audit trail logs events"
    secrets = flow.secrets
    assert len(secrets) == 2
    for record in caplog.records:
        text = " ".join(
            [
                record.getMessage(),
                str(record.args),
                record.exc_text or "",
                repr(record.__dict__),
            ]
        )
        for secret in secrets:
            assert secret not in text, f"{record.name}: {record.getMessage()}"
        for code in flow.recovery_codes:
            assert code not in text and code.replace("-", "") not in text.lower(), record.getMessage()
        assert "otpauth" not in text, f"{record.name}: {record.getMessage()}"
        assert PASSWORD not in text, f"{record.name}: {record.getMessage()}"
    for secret in secrets:
        assert secret not in caplog.text
    assert PASSWORD not in caplog.text
