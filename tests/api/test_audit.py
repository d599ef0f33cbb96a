"""The audit trail: a SecurityEvent row, a Django signal and a log line ("otp_app.security")
for each security event, with user, time, client address and user agent, and a small JSON
detail. No detail, user agent field or log line ever holds a secret, a recovery code or a
password."""

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.dispatch import Signal
from django.test import Client, override_settings
from rest_framework.test import APIClient

from otp_app import services, signals, totp
from otp_app.models import SecurityEvent, UserModel
from tests.helpers import (
    ADMIN_USERS,
    DISABLE,
    END_OTHER_SESSIONS,
    GENERATE,
    PASSKEYS,
    PASSWORD,
    PASSWORD_PATH,
    RECOVERY_CODES,
    REGISTER,
    VALIDATE,
    VERIFY,
    add_passkey,
    code_for,
    enrol,
    login,
    make_user,
    prove_passkey,
    spellings,
    wrong_code,
)
from tests.support.authenticator import SoftwareAuthenticator

AGENT = "AuditTest/1.0 (a browser of Ann's)"
ADDRESS = "203.0.113.7"
Kind = SecurityEvent.Kind


def browser() -> APIClient:
    return APIClient(HTTP_USER_AGENT=AGENT, REMOTE_ADDR=ADDRESS)


def full_session(email: str, secret: str, clock) -> APIClient:
    client = browser()
    assert login(client, email).status_code == 200
    assert client.post(VALIDATE, {"token": code_for(secret, clock)}, format="json").status_code == 200
    return client


def ann_with_2fa() -> tuple[UserModel, str]:
    secret = totp.new_secret()
    return make_user(otp_enabled=True, otp_verified=True, otp_secret=secret), secret


# --- One scenario per kind of event: it makes the event happen and names whose it is --------------


def registered(clock):
    response = browser().post(
        REGISTER, {"email": "new@example.com", "name": "New", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 201
    return "new@example.com"


def login_succeeded(clock):
    make_user()
    assert login(browser(), "ann@example.com").status_code == 200
    return "ann@example.com"


def login_failed(clock):
    make_user()
    assert login(browser(), "ann@example.com", "not the password").status_code == 400
    return "ann@example.com"


def locked_out(clock):
    ann, secret = ann_with_2fa()
    client = browser()
    assert login(client, ann.email).status_code == 200
    for _ in range(5):
        assert client.post(VALIDATE, {"token": wrong_code(secret, clock)}, format="json").status_code == 400
    assert client.post(VALIDATE, {"token": code_for(secret, clock)}, format="json").status_code == 429
    return ann.email


def codes_locked(clock):
    ann, secret = ann_with_2fa()
    client = browser()
    assert login(client, ann.email).status_code == 200
    with override_settings(TWOFA_CODE_FAILURE_LIMIT=6):
        for _ in range(5):
            assert client.post(VALIDATE, {"token": wrong_code(secret, clock)}, format="json").status_code == 400
        clock.tick(31)
        assert client.post(VALIDATE, {"token": wrong_code(secret, clock)}, format="json").status_code == 400
        assert client.post(VALIDATE, {"token": code_for(secret, clock)}, format="json").status_code == 429
    return ann.email


def otp_enabled(clock):
    make_user()
    client = browser()
    assert login(client, "ann@example.com").status_code == 200
    enrol(client, clock)
    return "ann@example.com"


def otp_disabled(clock):
    ann, secret = ann_with_2fa()
    assert full_session(ann.email, secret, clock).post(DISABLE, {}, format="json").status_code == 200
    return ann.email


def secret_reenrolled(clock):
    ann, secret = ann_with_2fa()
    client = full_session(ann.email, secret, clock)
    new_secret = client.post(GENERATE, {}, format="json").json()["base32"]
    clock.tick(30)
    assert client.post(VERIFY, {"token": code_for(new_secret, clock)}, format="json").status_code == 200
    return ann.email


def recovery_code_used(clock):
    make_user()
    client = browser()
    assert login(client, "ann@example.com").status_code == 200
    codes = enrol(client, clock)[1]["recovery_codes"]
    lost_phone = browser()
    assert login(lost_phone, "ann@example.com").status_code == 200
    assert lost_phone.post(VALIDATE, {"token": codes[0]}, format="json").status_code == 200
    return "ann@example.com"


def recovery_codes_regenerated(clock):
    make_user()
    client = browser()
    assert login(client, "ann@example.com").status_code == 200
    secret, _ = enrol(client, clock)
    clock.tick(30)
    assert client.post(RECOVERY_CODES, {"token": code_for(secret, clock)}, format="json").status_code == 200
    return "ann@example.com"


def otp_reset_by_admin(clock):
    ann, _ = ann_with_2fa()
    root = make_user("root@example.com", "Root", is_staff=True, is_superuser=True)
    admin = Client(HTTP_USER_AGENT=AGENT, REMOTE_ADDR=ADDRESS)
    admin.force_login(root)
    response = admin.post(ADMIN_USERS, {"action": "reset_two_factor", "_selected_action": [str(ann.pk)]})
    assert response.status_code == 302
    return ann.email


def ann_with_passkey() -> tuple[APIClient, SoftwareAuthenticator, dict]:
    """Ann, logged in with her password, adds a passkey: (her browser, the passkey, the answer)."""
    make_user()
    client, authenticator = browser(), SoftwareAuthenticator(origin="http://testserver")
    assert login(client, "ann@example.com").status_code == 200
    response = add_passkey(client, authenticator)
    assert response.status_code == 201, response.content
    return client, authenticator, response.json()


def passkey_added(clock):
    ann_with_passkey()
    return "ann@example.com"


def passkey_removed(clock):
    client, _, added = ann_with_passkey()
    assert client.delete(f"{PASSKEYS}/{added['passkey']['id']}", {}, format="json").status_code == 200
    return "ann@example.com"


def passkey_used(clock):
    _, authenticator, _ = ann_with_passkey()
    client = browser()
    assert login(client, "ann@example.com").status_code == 200
    assert prove_passkey(client, authenticator).status_code == 200
    return "ann@example.com"


def password_changed(clock):
    make_user()
    client = browser()
    assert login(client, "ann@example.com").status_code == 200
    body = {"current_password": PASSWORD, "new_password": "a new horse battery staple"}
    assert client.post(PASSWORD_PATH, body, format="json").status_code == 200
    return "ann@example.com"


def sessions_ended(clock):
    make_user()
    client, other = browser(), browser()
    assert login(client, "ann@example.com").status_code == 200
    assert login(other, "ann@example.com").status_code == 200
    assert client.post(END_OTHER_SESSIONS, {}, format="json").json()["ended"] == 1
    return "ann@example.com"


def passkey_refused(clock):
    _, authenticator, _ = ann_with_passkey()
    client = browser()
    assert login(client, "ann@example.com").status_code == 200
    assert prove_passkey(client, authenticator, origin="https://phishing.example").status_code == 400
    return "ann@example.com"


SCENARIOS = {
    Kind.REGISTERED: (registered, signals.registered),
    Kind.LOGIN_SUCCEEDED: (login_succeeded, signals.login_succeeded),
    Kind.LOGIN_FAILED: (login_failed, signals.login_failed),
    Kind.LOCKED_OUT: (locked_out, signals.locked_out),
    Kind.CODES_LOCKED: (codes_locked, signals.codes_locked),
    Kind.OTP_ENABLED: (otp_enabled, signals.otp_enabled),
    Kind.OTP_DISABLED: (otp_disabled, signals.otp_disabled),
    Kind.SECRET_REENROLLED: (secret_reenrolled, signals.secret_reenrolled),
    Kind.RECOVERY_CODE_USED: (recovery_code_used, signals.recovery_code_used),
    Kind.RECOVERY_CODES_REGENERATED: (recovery_codes_regenerated, signals.recovery_codes_regenerated),
    Kind.OTP_RESET_BY_ADMIN: (otp_reset_by_admin, signals.otp_reset_by_admin),
    Kind.PASSKEY_ADDED: (passkey_added, signals.passkey_added),
    Kind.PASSKEY_REMOVED: (passkey_removed, signals.passkey_removed),
    Kind.PASSKEY_USED: (passkey_used, signals.passkey_used),
    Kind.PASSKEY_REFUSED: (passkey_refused, signals.passkey_refused),
    Kind.PASSWORD_CHANGED: (password_changed, signals.password_changed),
    Kind.SESSIONS_ENDED: (sessions_ended, signals.sessions_ended),
}
KINDS = pytest.mark.parametrize("kind", list(SCENARIOS), ids=[kind.value for kind in SCENARIOS])


def test_every_kind_of_event_has_a_scenario_here():
    assert set(SCENARIOS) == set(Kind)
    assert len(Kind) == 17


def wall_clock() -> datetime:
    return datetime.now(tz=UTC)


def assert_recent(event: SecurityEvent, started: datetime, clock) -> None:
    """The event's time is now: the wall clock's, or the app's clock that the test moves."""
    on_the_wall = started - timedelta(seconds=1) <= event.created_at <= wall_clock() + timedelta(seconds=1)
    on_the_app_clock = abs(event.created_at - services.as_datetime(clock.now)) <= timedelta(minutes=5)
    assert on_the_wall or on_the_app_clock, event.created_at


# --- The SecurityEvent row -------------------------------------------------------------------------


@KINDS
def test_each_event_is_recorded_with_user_time_address_agent_and_detail(db, clock, kind):
    scenario, _ = SCENARIOS[kind]
    started = wall_clock()

    email = scenario(clock)

    events = list(SecurityEvent.objects.filter(kind=kind))
    assert len(events) == 1, [str(event) for event in SecurityEvent.objects.all()]
    event = events[0]
    assert event.user is not None and event.user.email == email
    assert event.email == email
    assert_recent(event, started, clock)
    assert event.client_address == ADDRESS
    assert event.user_agent == AGENT
    assert isinstance(event.detail, dict)
    assert len(json.dumps(event.detail)) < 1000


def test_a_failed_login_for_an_unknown_email_is_recorded_without_a_user(db, clock):
    assert login(browser(), "Nobody@Example.com", "some password").status_code == 400

    event = SecurityEvent.objects.get(kind=Kind.LOGIN_FAILED)
    assert event.user is None
    assert event.email.lower() == "nobody@example.com"
    assert event.client_address == ADDRESS
    assert "some password" not in json.dumps(event.detail)


def test_a_successful_login_is_not_recorded_as_a_failure_and_vice_versa(db, clock):
    make_user()
    login(browser(), "ann@example.com")
    login(browser(), "ann@example.com", "wrong")
    assert SecurityEvent.objects.filter(kind=Kind.LOGIN_SUCCEEDED).count() == 1
    assert SecurityEvent.objects.filter(kind=Kind.LOGIN_FAILED).count() == 1


def test_wrong_codes_below_the_threshold_record_no_lockout(db, clock):
    ann, secret = ann_with_2fa()
    client = browser()
    login(client, ann.email)
    for _ in range(4):
        client.post(VALIDATE, {"token": wrong_code(secret, clock)}, format="json")
    assert not SecurityEvent.objects.filter(kind=Kind.LOCKED_OUT).exists()


def test_a_lockout_from_wrong_recovery_codes_is_recorded(db, clock):
    ann, _ = ann_with_2fa()
    client = browser()
    login(client, ann.email)
    for _ in range(5):
        assert client.post(VALIDATE, {"token": "zzzzz-zzzzz"}, format="json").status_code == 400
    assert SecurityEvent.objects.filter(kind=Kind.LOCKED_OUT, user=ann).count() == 1


def test_the_client_address_comes_from_the_configured_proxy_header(db, clock, settings):
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    make_user()
    login(APIClient(HTTP_X_REAL_IP="198.51.100.23", REMOTE_ADDR="10.0.0.1"), "ann@example.com")
    assert SecurityEvent.objects.get(kind=Kind.LOGIN_SUCCEEDED).client_address == "198.51.100.23"


def test_a_recovery_code_event_says_how_many_codes_are_left(db, clock):
    recovery_code_used(clock)
    assert SecurityEvent.objects.get(kind=Kind.RECOVERY_CODE_USED).detail.get("recovery_codes_left") == 9


# --- Signals -----------------------------------------------------------------------------------------


def test_each_kind_has_its_own_django_signal():
    sent = [signal for _, signal in SCENARIOS.values()]
    assert all(isinstance(signal, Signal) for signal in sent)
    assert len({id(signal) for signal in sent}) == len(sent)


@KINDS
def test_each_event_sends_its_signal_with_event_user_and_request(db, clock, kind):
    scenario, signal = SCENARIOS[kind]
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    signal.connect(receiver)
    try:
        email = scenario(clock)
    finally:
        signal.disconnect(receiver)

    assert len(received) == 1, received
    call = received[0]
    event = call["event"]
    assert isinstance(event, SecurityEvent) and event.pk is not None  # recorded before it is sent
    assert event.kind == kind
    assert call["user"] is not None and call["user"].email == email
    assert event.email == email  # what an integrator e-mails to
    request = call["request"]
    assert request.META.get("HTTP_USER_AGENT") == AGENT


@KINDS
def test_other_kinds_signals_stay_silent(db, clock, kind):
    scenario, own = SCENARIOS[kind]
    received = []

    def receiver(sender, event, **kwargs):
        received.append(event.kind)

    others = [signal for _, signal in SCENARIOS.values() if signal is not own]
    for signal in others:
        signal.connect(receiver)
    try:
        scenario(clock)
    finally:
        for signal in others:
            signal.disconnect(receiver)

    assert kind not in received
    assert set(received) <= set(SecurityEvent.objects.values_list("kind", flat=True))


# --- Log lines ------------------------------------------------------------------------------------------


def security_records(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "otp_app.security"]


@KINDS
def test_each_event_writes_one_log_line_on_the_security_logger(db, clock, caplog, kind):
    scenario, _ = SCENARIOS[kind]
    caplog.set_level(logging.DEBUG, logger="otp_app.security")

    scenario(clock)

    records = security_records(caplog)
    assert len(records) == SecurityEvent.objects.count()
    assert sum(kind.value in record.getMessage() for record in records) == 1


# --- Nothing secret in events or logs, over a whole life of an account ---------------------------------------

REGISTERED_PASSWORD = "Zebra-Quartz-Lantern-42!"
WRONG_PASSWORD = "Xylophone-Mistake-Password-7"
NEW_PASSWORD = "Harbour-Violet-Compass-19?"


def halves_of(code: str) -> set[str]:
    canonical = code.replace("-", "").replace(" ", "")
    return {part for half in (canonical[:5], canonical[5:]) for part in (half.lower(), half.upper())}


def test_no_event_and_no_log_line_holds_a_secret_a_recovery_code_or_a_password(
    db, no_idle_limit, clock, caplog, monkeypatch
):
    for logger in ("", "django", "django.db.backends", "otp_app"):
        caplog.set_level(logging.DEBUG, logger=logger)
    # SQL statements are logged too. Patched on the connection itself, not on the `connection`
    # proxy: monkeypatch would restore the proxy's (empty) __dict__ and delete the attribute.
    monkeypatch.setattr(connections[DEFAULT_DB_ALIAS], "force_debug_cursor", True)
    email = "life@example.com"
    secrets_seen, codes_seen = [], []
    passwords = [REGISTERED_PASSWORD]

    def sign_in():
        client = browser()
        assert login(client, email, passwords[-1]).status_code == 200
        return client

    # register, a wrong password, log in, switch 2FA on
    assert (
        browser()
        .post(REGISTER, {"email": email, "name": "Life", "password": REGISTERED_PASSWORD}, format="json")
        .status_code
        == 201
    )
    assert login(browser(), email, WRONG_PASSWORD).status_code == 400
    client = sign_in()
    generated = client.post(GENERATE, {}, format="json").json()
    secrets_seen.append(generated["base32"])
    verified = client.post(VERIFY, {"token": code_for(secrets_seen[0], clock)}, format="json").json()
    codes_seen += verified["recovery_codes"]
    # a login with a TOTP code, one with a recovery code, then new recovery codes
    clock.tick(30)
    totp_login = sign_in()
    assert totp_login.post(VALIDATE, {"token": code_for(secrets_seen[0], clock)}, format="json").status_code == 200
    recovery_login = sign_in()
    assert recovery_login.post(VALIDATE, {"token": codes_seen[0].upper()}, format="json").status_code == 200
    clock.tick(30)
    regenerated = totp_login.post(RECOVERY_CODES, {"token": code_for(secrets_seen[0], clock)}, format="json").json()
    codes_seen += regenerated["recovery_codes"]
    # a new secret replaces the one in force; a pending one is left over; then 2FA off with a code
    secrets_seen.append(totp_login.post(GENERATE, {}, format="json").json()["base32"])
    clock.tick(30)
    assert totp_login.post(VERIFY, {"token": code_for(secrets_seen[1], clock)}, format="json").status_code == 200
    secrets_seen.append(totp_login.post(GENERATE, {}, format="json").json()["base32"])
    clock.tick(3600)
    assert totp_login.post(DISABLE, {"token": code_for(secrets_seen[1], clock)}, format="json").status_code == 200
    # another browser's session ended from this one, then a new password
    sign_in()
    assert totp_login.post(END_OTHER_SESSIONS, {}, format="json").json()["ended"] == 1
    body = {"current_password": passwords[-1], "new_password": NEW_PASSWORD}
    assert totp_login.post(PASSWORD_PATH, body, format="json").status_code == 200
    passwords.append(NEW_PASSWORD)
    # on again, then locked out by wrong codes of both kinds
    client = sign_in()
    secret, enabled = enrol(client, clock)
    codes = enabled["recovery_codes"]
    secrets_seen.append(secret)
    codes_seen += codes
    # a passkey beside TOTP: added, refused once (a phishing page), used, removed
    authenticator = SoftwareAuthenticator(origin="http://testserver")
    assert add_passkey(client, authenticator).status_code == 201
    assert prove_passkey(sign_in(), authenticator, origin="https://phishing.example").status_code == 400
    passkey_login = sign_in()
    assert prove_passkey(passkey_login, authenticator).status_code == 200
    passkey_id = passkey_login.get(PASSKEYS).json()["passkeys"][0]["id"]
    assert passkey_login.delete(f"{PASSKEYS}/{passkey_id}", {}, format="json").status_code == 200
    locked = sign_in()
    for token in ["zzzzz-zzzzz", wrong_code(secret, clock), "zzzzz-zzzzz", wrong_code(secret, clock), "yyyyy-yyyyy"]:
        assert locked.post(VALIDATE, {"token": token}, format="json").status_code == 400
    assert locked.post(VALIDATE, {"token": codes[1]}, format="json").status_code == 429
    # one more wrong code after the lock, and the authenticator's codes stay locked
    clock.tick(31)
    with override_settings(TWOFA_CODE_FAILURE_LIMIT=6):
        assert locked.post(VALIDATE, {"token": wrong_code(secret, clock)}, format="json").status_code == 400
    # an administrator resets it
    root = make_user("root@example.com", "Root", is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(root)
    user = UserModel.objects.get(email=email)
    admin.post(ADMIN_USERS, {"action": "reset_two_factor", "_selected_action": [str(user.pk)]})

    kinds = set(SecurityEvent.objects.values_list("kind", flat=True))
    assert kinds == set(Kind)  # the flow went through every kind of event
    needles = {REGISTERED_PASSWORD, WRONG_PASSWORD, PASSWORD, NEW_PASSWORD}
    for secret in secrets_seen:
        needles |= {secret, secret.lower()}
    for code in codes_seen:
        needles |= spellings(code)
    # Half a recovery code is a leak too; looked for where the app writes on purpose (SQL logs
    # hold hex hashes, where five hex-like symbols could turn up by chance).
    halves = {half for code in codes_seen for half in halves_of(code)}
    assert len(security_records(caplog)) == SecurityEvent.objects.count()
    assert any(record.name == "django.db.backends" for record in caplog.records)
    for record in caplog.records:
        message = record.getMessage()
        own = record.name.startswith("otp_app")
        for needle in needles | (halves if own else set()):
            assert needle not in message, f"{record.name}: {message[:300]}"
    for event in SecurityEvent.objects.all():
        stored = json.dumps(event.detail) + event.user_agent + event.email
        for needle in needles | halves:
            assert needle not in stored, (event.kind, stored)


def test_a_failing_signal_receiver_does_not_lose_the_recovery_codes(logged_in_client, user, clock):
    def mail_server_down(sender, **kwargs):
        raise ConnectionError("SMTP unreachable")

    signals.otp_enabled.connect(mail_server_down)
    try:
        secret = logged_in_client.post("/api/auth/otp/generate", {}, format="json").json()["base32"]
        response = logged_in_client.post("/api/auth/otp/verify", {"token": code_for(secret, clock)}, format="json")
    finally:
        signals.otp_enabled.disconnect(mail_server_down)
    assert response.status_code == 200
    assert len(response.json()["recovery_codes"]) == 10
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.OTP_ENABLED, user=user).count() == 1
