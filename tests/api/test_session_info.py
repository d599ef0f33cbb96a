"""SESSION_INFO, the `session` of `GET me`: when and how this session authenticated, and until
when it counts as re-authenticated, so that a client knows before asking a person whether a
change of factors (otp/disable, say) will need a code. Read from the session alone: `me` still
makes one SQL statement."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from otp_app import totp
from tests.api import test_passkeys
from tests.helpers import (
    DISABLE,
    ME,
    PASSKEY_AUTHENTICATION,
    PASSKEY_AUTHENTICATION_OPTIONS,
    add_passkey,
    code_for,
    enrol,
    iso,
    login,
    make_user,
    pending_login,
    prove_passkey,
    validate,
)
from tests.support.authenticator import SoftwareAuthenticator

SESSION_INFO_FIELDS = {"authenticated_at", "second_factor_at", "methods", "reauthenticated_until", "enrolment_required"}


# `user` with one passkey (`authenticator`'s), her only second factor.
authenticator, with_passkey = test_passkeys.authenticator, test_passkeys.with_passkey


def session_info(client) -> dict:
    response = client.get(ME)
    assert response.status_code == 200, response.content
    info = response.json()["session"]
    assert set(info) == SESSION_INFO_FIELDS
    return info


def sign_in_with(authenticator, client=None) -> APIClient:
    """A passkey sign-in, without a password, in `client` (a new browser by default)."""
    client = client or APIClient()
    options = client.post(PASSKEY_AUTHENTICATION_OPTIONS).json()["publicKey"]
    assert options["allowCredentials"] == []  # no account in this session: a sign-in
    response = client.post(PASSKEY_AUTHENTICATION, {"credential": authenticator.authenticate(options)}, format="json")
    assert response.status_code == 200, response.content
    return client


# --- How the session authenticated ---------------------------------------------------------------


def test_a_password_login_without_2fa(api, user, clock):
    assert login(api, user.email).status_code == 200
    clock.tick(5)

    assert session_info(api) == {
        "authenticated_at": iso(clock.now - 5),
        "second_factor_at": None,
        "methods": ["password"],
        "reauthenticated_until": None,
        "enrolment_required": False,
    }


def test_a_password_and_a_totp_code(user_with_2fa, clock, settings):
    client = pending_login(user_with_2fa.email)
    clock.tick(20)
    assert validate(client, code_for(user_with_2fa.otp_secret, clock)).status_code == 200

    assert session_info(client) == {
        "authenticated_at": iso(clock.now - 20),
        "second_factor_at": iso(clock.now),
        "methods": ["password", "totp"],
        "reauthenticated_until": iso(clock.now + settings.TWOFA_REAUTH_SECONDS),
        "enrolment_required": False,
    }


def test_a_password_and_a_recovery_code(user, logged_in_client, clock, settings):
    codes = enrol(logged_in_client, clock)[1]["recovery_codes"]
    client = pending_login(user.email)
    clock.tick(10)
    assert validate(client, codes[0]).status_code == 200

    info = session_info(client)

    assert info["methods"] == ["password", "recovery_code"]
    assert info["authenticated_at"] == iso(clock.now - 10)
    assert info["second_factor_at"] == iso(clock.now)
    assert info["reauthenticated_until"] == iso(clock.now + settings.TWOFA_REAUTH_SECONDS)


def test_a_password_and_a_passkey(user, with_passkey, authenticator, clock, settings):
    client = APIClient()
    assert login(client, user.email).json()["user"]["two_factor_enabled"] is True  # pending
    clock.tick(10)
    assert prove_passkey(client, authenticator).status_code == 200

    info = session_info(client)

    assert info["methods"] == ["password", "passkey"]
    assert info["authenticated_at"] == iso(clock.now - 10)
    assert info["second_factor_at"] == iso(clock.now)
    assert info["reauthenticated_until"] == iso(clock.now + settings.TWOFA_REAUTH_SECONDS)


def test_a_passkey_sign_in_without_a_password(user, with_passkey, authenticator, clock, settings):
    clock.tick(10)
    client = sign_in_with(authenticator)

    assert session_info(client) == {
        "authenticated_at": iso(clock.now),
        "second_factor_at": iso(clock.now),
        "methods": ["passkey"],
        "reauthenticated_until": iso(clock.now + settings.TWOFA_REAUTH_SECONDS),
        "enrolment_required": False,
    }


def test_a_passkey_sign_in_after_a_pending_login_timed_out_claims_no_password(
    user, with_passkey, authenticator, clock, settings
):
    # Bob's login in this browser waited for its code too long; Ann then signs in with her passkey.
    make_user("bob@example.com", "Bob", otp_enabled=True, otp_verified=True, otp_secret=totp.new_secret())
    browser = pending_login("bob@example.com")
    clock.tick(settings.TWOFA_PENDING_SECONDS + 1)

    sign_in_with(authenticator, browser)

    info = session_info(browser)
    assert info["methods"] == ["passkey"]
    assert info["authenticated_at"] == iso(clock.now)


def test_a_step_up_with_a_passkey_adds_it_and_renews_the_proof(user_with_2fa, clock):
    client = pending_login(user_with_2fa.email)
    assert validate(client, code_for(user_with_2fa.otp_secret, clock)).status_code == 200
    authenticator = SoftwareAuthenticator(origin="http://testserver", rp_id="localhost")
    assert add_passkey(client, authenticator).status_code == 201
    clock.tick(600)

    assert prove_passkey(client, authenticator).status_code == 200

    info = session_info(client)
    assert info["methods"] == ["password", "totp", "passkey"]
    assert info["authenticated_at"] == iso(clock.now - 600)
    assert info["second_factor_at"] == iso(clock.now)


# --- Until when it counts as re-authenticated -------------------------------------------------------


def test_reauthenticated_until_is_the_proof_plus_the_window_then_null(full_2fa_client, user_with_2fa, clock, settings):
    proven = clock.now
    until = iso(proven + settings.TWOFA_REAUTH_SECONDS)
    clock.tick(settings.TWOFA_REAUTH_SECONDS)
    assert session_info(full_2fa_client)["reauthenticated_until"] == until

    clock.tick(1)

    info = session_info(full_2fa_client)
    assert info["reauthenticated_until"] is None
    assert info["second_factor_at"] == iso(proven)  # still when it was proven, only no longer recent


def test_once_the_window_has_passed_otp_disable_needs_a_code(full_2fa_client, user_with_2fa, clock, settings):
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)
    assert session_info(full_2fa_client)["reauthenticated_until"] is None

    response = full_2fa_client.post(DISABLE, {}, format="json")

    assert response.status_code == 403
    assert response.json()["message"].startswith("Confirm with a code")
    clock.tick(30)
    with_a_code = {"token": code_for(user_with_2fa.otp_secret, clock)}
    assert full_2fa_client.post(DISABLE, with_a_code, format="json").status_code == 200


def test_within_the_window_otp_disable_needs_no_code(full_2fa_client, clock, settings):
    clock.tick(settings.TWOFA_REAUTH_SECONDS - 1)
    assert session_info(full_2fa_client)["reauthenticated_until"] is not None

    assert full_2fa_client.post(DISABLE, {}, format="json").status_code == 200


def test_a_token_sent_with_a_change_renews_the_proof_and_names_its_method(logged_in_client, clock, settings):
    secret, _ = enrol(logged_in_client, clock)
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)
    assert session_info(logged_in_client)["reauthenticated_until"] is None

    assert logged_in_client.post(DISABLE, {"token": code_for(secret, clock)}, format="json").status_code == 200

    info = session_info(logged_in_client)
    assert info["methods"] == ["password", "totp"]
    assert info["second_factor_at"] == iso(clock.now)
    assert info["reauthenticated_until"] == iso(clock.now + settings.TWOFA_REAUTH_SECONDS)


# --- Enrolment required --------------------------------------------------------------------------------


def test_enrolment_is_required_with_twofa_required_and_no_factor_then_not(logged_in_client, clock, settings):
    settings.TWOFA_REQUIRED = True
    assert session_info(logged_in_client)["enrolment_required"] is True

    enrol(logged_in_client, clock)

    info = session_info(logged_in_client)
    assert info["enrolment_required"] is False
    # Enrolling proves the new factor, not the person: no method, but a fresh proof.
    assert info["methods"] == ["password"]
    assert info["second_factor_at"] == iso(clock.now)


def test_enrolment_is_not_required_without_twofa_required(logged_in_client, settings):
    settings.TWOFA_REQUIRED = False

    assert session_info(logged_in_client)["enrolment_required"] is False


def test_enrolment_is_not_required_of_an_account_with_a_passkey(user, with_passkey, logged_in_client, settings):
    settings.TWOFA_REQUIRED = True

    assert session_info(logged_in_client)["enrolment_required"] is False


# --- Still one statement ------------------------------------------------------------------------------


@pytest.mark.parametrize("required", [False, True], ids=["2FA optional", "2FA required"])
def test_me_with_its_session_info_makes_one_sql_statement(full_2fa_client, clock, settings, required):
    settings.TWOFA_REQUIRED = required
    with CaptureQueriesContext(connection) as queries:
        response = full_2fa_client.get(ME)

    assert response.status_code == 200
    assert response.json()["session"]["methods"] == ["password", "totp"]
    assert len(queries) == 1 and queries[0]["sql"].lstrip().upper().startswith("SELECT")


def test_me_of_a_passkey_sign_in_makes_one_sql_statement(user, with_passkey, authenticator, clock):
    client = sign_in_with(authenticator)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(ME)

    assert response.json()["session"]["methods"] == ["passkey"]
    assert len(queries) == 1
