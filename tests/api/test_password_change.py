"""POST password: the current password proves the person, and a wrong one counts as a failed
login; the new one passes the password validators; with 2FA on, a session that has not proven
its second factor lately sends a code (TOTP or recovery). The session that changed it stays,
under a new key; every other session of the account ends. The change is recorded and mailed."""

import pytest
from django.core import mail
from django_tasks_db.models import DBTaskResult
from rest_framework.test import APIClient

from otp_app.models import RecoveryCode, SecurityEvent, Session, UserModel
from otp_app.session_backends.db import stored_key
from tests.api import test_password_throttle
from tests.api.test_security_emails import DATABASE  # the task backend of production
from tests.helpers import (
    INVALID,
    ME,
    PASSWORD,
    PASSWORD_PATH,
    add_passkey,
    code_for,
    enrol,
    full_login,
    login,
    pending_login,
    public_id,
    session_key,
    wrong_code,
)
from tests.support.authenticator import SoftwareAuthenticator

NEW_PASSWORD = "Harbour-Violet-Compass-19?"
CHANGED = {"status": "success", "message": "Password changed"}
INCORRECT = {"status": "fail", "message": "Incorrect password"}
Kind = SecurityEvent.Kind
# Autouse here too: the failed-login limits' windows hold still while a test counts towards them.
counter_clock = test_password_throttle.counter_clock


def change(client, current=PASSWORD, new=NEW_PASSWORD, **body):
    return client.post(PASSWORD_PATH, {"current_password": current, "new_password": new, **body}, format="json")


def password_is(user, password: str) -> bool:
    return UserModel.objects.get(pk=user.pk).check_password(password)


def go_stale(clock, settings) -> None:
    """Past the re-authentication window, within the idle timeout."""
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 31)


def failed_attempts(user) -> int:
    return UserModel.objects.get(pk=user.pk).failed_attempts


# --- A change ----------------------------------------------------------------------------------------


def test_a_change_answers_success_and_the_new_password_logs_in_the_old_not(logged_in_client, user):
    response = change(logged_in_client)

    assert response.status_code == 200
    assert response.json() == CHANGED
    assert login(APIClient(), user.email, NEW_PASSWORD).status_code == 200
    assert login(APIClient(), user.email, PASSWORD).json() == {
        "status": "fail",
        "message": "Incorrect email or password",
    }


def test_the_session_that_changed_it_stays_under_a_new_key(logged_in_client, user):
    old_key, session_id = session_key(logged_in_client), public_id(logged_in_client)

    assert change(logged_in_client).status_code == 200

    new_key = session_key(logged_in_client)
    assert new_key != old_key
    assert logged_in_client.get(ME).status_code == 200
    assert public_id(logged_in_client) == session_id  # the same session, its row moved to the new key
    assert not Session.objects.filter(session_key=stored_key(old_key)).exists()
    stolen = APIClient()
    stolen.cookies["sessionid"] = old_key  # a copy of the cookie from before the change
    assert stolen.get(ME).status_code == 401


def test_every_other_session_ends_pending_ones_too_and_other_accounts_keep_theirs(
    user_with_2fa, full_2fa_client, other_user, clock
):
    other = full_login(user_with_2fa.email, user_with_2fa.otp_secret, clock)
    waiting = pending_login(user_with_2fa.email)
    bob = APIClient()
    assert login(bob, other_user.email).status_code == 200

    assert change(full_2fa_client).status_code == 200

    assert other.get(ME).status_code == 401
    assert waiting.get(ME).status_code == 401  # a live pending session is a 403 here
    assert full_2fa_client.get(ME).status_code == 200
    assert bob.get(ME).status_code == 200
    assert Session.objects.filter(user=user_with_2fa).count() == 1


def test_a_change_is_recorded_and_a_security_email_queued(logged_in_client, user, settings):
    settings.TASKS = DATABASE

    assert change(logged_in_client).status_code == 200

    (event,) = SecurityEvent.objects.filter(kind=Kind.PASSWORD_CHANGED)
    assert event.user_id == user.pk and event.email == user.email
    (task,) = DBTaskResult.objects.all()
    assert task.args_kwargs["kwargs"]["kind"] == "password_changed"
    assert task.args_kwargs["kwargs"]["to"] == user.email
    assert mail.outbox == []  # queued for the worker, not sent by the request


def test_no_event_or_email_holds_a_password(logged_in_client, user, settings):
    settings.TASKS = DATABASE
    assert change(logged_in_client, current=PASSWORD + "!", new="Wrong-New-Password-1").status_code == 400

    assert change(logged_in_client).status_code == 200

    text = repr(list(SecurityEvent.objects.values())) + repr(list(DBTaskResult.objects.values()))
    for password in (PASSWORD, NEW_PASSWORD, PASSWORD + "!", "Wrong-New-Password-1"):
        assert password not in text


# --- A wrong current password ------------------------------------------------------------------------


def test_a_wrong_current_password_is_refused_and_changes_nothing(logged_in_client, user):
    other = APIClient()
    assert login(other, user.email).status_code == 200

    response = change(logged_in_client, current="not the password")

    assert response.status_code == 400
    assert response.json() == INCORRECT
    assert password_is(user, PASSWORD)
    assert other.get(ME).status_code == 200
    assert not SecurityEvent.objects.filter(kind=Kind.PASSWORD_CHANGED).exists()


def test_a_wrong_current_password_is_recorded_as_a_failed_login(logged_in_client, user):
    assert change(logged_in_client, current="not the password").status_code == 400

    (event,) = SecurityEvent.objects.filter(kind=Kind.LOGIN_FAILED)
    assert event.user_id == user.pk
    assert event.detail == {"via": "password change"}


def test_wrong_current_passwords_count_towards_the_failed_login_limit(logged_in_client, user, settings):
    settings.TWOFA_LOGIN_FAILURES_PER_ACCOUNT = "3/15m"
    for _ in range(3):
        assert change(logged_in_client, current="not the password").status_code == 400

    refused = change(logged_in_client)  # the right password, over the limit

    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 15 * 60
    assert password_is(user, PASSWORD)
    assert login(APIClient(), user.email).status_code == 429  # one limit for logins and changes


def test_failed_logins_count_towards_the_limit_of_a_change(logged_in_client, user, settings):
    settings.TWOFA_LOGIN_FAILURES_PER_ACCOUNT = "3/15m"
    for _ in range(3):
        assert login(APIClient(), user.email, "not the password").status_code == 400

    assert change(logged_in_client).status_code == 429
    assert password_is(user, PASSWORD)


def test_with_the_default_limit_the_eleventh_attempt_is_refused(logged_in_client, user, settings):
    assert settings.TWOFA_LOGIN_FAILURES_PER_ACCOUNT == "10/15m"
    statuses = [change(logged_in_client, current="not the password").status_code for _ in range(11)]

    assert statuses == [400] * 10 + [429]


def test_a_right_current_password_takes_its_attempt_back(logged_in_client, user, settings):
    settings.TWOFA_LOGIN_FAILURES_PER_ACCOUNT = "3/15m"
    assert change(logged_in_client, current="not the password").status_code == 400
    assert change(logged_in_client, current="not the password").status_code == 400

    assert change(logged_in_client).status_code == 200
    assert change(logged_in_client, current=NEW_PASSWORD, new="Another-Fine-Password-8").status_code == 200


def test_a_wrong_current_password_is_refused_before_a_token_is_looked_at(full_2fa_client, user_with_2fa, clock):
    response = change(full_2fa_client, current="not the password", token=wrong_code(user_with_2fa.otp_secret, clock))

    assert response.json() == INCORRECT
    assert failed_attempts(user_with_2fa) == 0


# --- The new password -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "new_password",
    ["short", "password123", "98765432109876", "ann@example.com", "Ann-example-com"],
    ids=["too short", "common", "numeric", "the email", "like the email"],
)
def test_a_new_password_the_validators_refuse_is_a_400_with_errors_and_changes_nothing(
    logged_in_client, user, new_password
):
    other = APIClient()
    assert login(other, user.email).status_code == 200

    response = change(logged_in_client, new=new_password)

    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "fail"
    assert isinstance(body["message"], str) and body["message"]
    assert set(body["errors"]) == {"new_password"}
    assert body["errors"]["new_password"] and all(isinstance(error, str) for error in body["errors"]["new_password"])
    assert password_is(user, PASSWORD)
    assert other.get(ME).status_code == 200
    assert not SecurityEvent.objects.filter(kind=Kind.PASSWORD_CHANGED).exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"current_password": PASSWORD},
        {"new_password": NEW_PASSWORD},
        {"current_password": None, "new_password": NEW_PASSWORD},
        {"current_password": PASSWORD, "new_password": None},
        {"current_password": PASSWORD, "new_password": ""},
        {"current_password": PASSWORD, "new_password": 12345678901234},
        {"current_password": [PASSWORD], "new_password": NEW_PASSWORD},
        {"current_password": PASSWORD, "new_password": "x" * 129},
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD + "\x00"},
    ],
    ids=["empty", "no new", "no current", "null current", "null new", "blank new", "number", "list", "long", "nul"],
)
def test_a_missing_or_malformed_field_is_a_400_and_changes_nothing(logged_in_client, user, body):
    response = logged_in_client.post(PASSWORD_PATH, body, format="json")

    assert response.status_code == 400
    assert response.json()["status"] == "fail"
    assert isinstance(response.json()["message"], str)
    assert password_is(user, PASSWORD)


# --- With 2FA on: the re-authentication rule --------------------------------------------------------


def test_a_recent_proof_needs_no_token(full_2fa_client, user_with_2fa):
    assert change(full_2fa_client).status_code == 200
    assert password_is(user_with_2fa, NEW_PASSWORD)


def test_without_a_recent_proof_a_change_without_a_token_is_403(full_2fa_client, user_with_2fa, clock, settings):
    go_stale(clock, settings)

    response = change(full_2fa_client)

    assert response.status_code == 403
    assert response.json()["message"].startswith("Confirm with a code")
    assert password_is(user_with_2fa, PASSWORD)


def test_without_a_recent_proof_a_wrong_token_is_a_wrong_code(full_2fa_client, user_with_2fa, clock, settings):
    go_stale(clock, settings)

    response = change(full_2fa_client, token=wrong_code(user_with_2fa.otp_secret, clock))

    assert response.status_code == 400
    assert response.json() == INVALID
    assert failed_attempts(user_with_2fa) == 1
    assert password_is(user_with_2fa, PASSWORD)


def test_without_a_recent_proof_a_totp_code_changes_it(full_2fa_client, user_with_2fa, clock, settings):
    other = full_login(user_with_2fa.email, user_with_2fa.otp_secret, clock)
    go_stale(clock, settings)

    response = change(full_2fa_client, token=code_for(user_with_2fa.otp_secret, clock))

    assert response.status_code == 200
    assert password_is(user_with_2fa, NEW_PASSWORD)
    assert other.get(ME).status_code == 401
    assert UserModel.objects.get(pk=user_with_2fa.pk).last_accepted_step == clock.step()  # used once


def test_without_a_recent_proof_a_recovery_code_changes_it_and_is_used_up(logged_in_client, user, clock, settings):
    codes = enrol(logged_in_client, clock)[1]["recovery_codes"]
    go_stale(clock, settings)

    assert change(logged_in_client, token=codes[0]).status_code == 200

    assert password_is(user, NEW_PASSWORD)
    assert UserModel.objects.get(pk=user.pk).recovery_codes_left == len(codes) - 1
    assert RecoveryCode.objects.filter(user=user, used_at__isnull=False).count() == 1
    go_stale(clock, settings)
    reused = change(logged_in_client, current=NEW_PASSWORD, new="Another-Fine-Password-8", token=codes[0])
    assert reused.status_code == 400
    assert password_is(user, NEW_PASSWORD)


def test_with_passkeys_only_a_recovery_code_changes_it_and_a_six_digit_token_is_403(
    logged_in_client, user, clock, settings
):
    # The recovery codes stand in for every factor, a passkey too: someone who lost the passkey
    # can still change the password from a session that is no longer fresh.
    codes = add_passkey(logged_in_client, SoftwareAuthenticator()).json()["recovery_codes"]
    go_stale(clock, settings)

    refused = change(logged_in_client, token="123456")  # no TOTP: nothing a six-digit code could be
    assert refused.status_code == 403
    assert refused.json()["message"].startswith("Confirm with a code")
    assert change(logged_in_client, token=codes[0]).status_code == 200

    assert password_is(user, NEW_PASSWORD)
    assert RecoveryCode.objects.filter(user=user, used_at__isnull=False).count() == 1


def test_a_code_used_at_login_is_refused_as_a_token(user_with_2fa, clock, settings):
    client = pending_login(user_with_2fa.email)
    code = code_for(user_with_2fa.otp_secret, clock)
    assert client.post("/api/auth/otp/validate", {"token": code}, format="json").status_code == 200
    go_stale(clock, settings)

    response = change(client, token=code)

    assert response.status_code == 400
    assert password_is(user_with_2fa, PASSWORD)


# --- Who may change it -------------------------------------------------------------------------------------


def test_a_pending_session_is_refused_with_403(pending_client, user_with_2fa):
    response = change(pending_client)

    assert response.status_code == 403
    assert password_is(user_with_2fa, PASSWORD)


def test_no_session_is_refused_with_401(api, user):
    response = change(api)

    assert response.status_code == 401
    assert password_is(user, PASSWORD)
