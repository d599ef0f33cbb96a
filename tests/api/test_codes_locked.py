"""Wrong codes cannot go on forever: after TWOFA_CODE_FAILURE_LIMIT (at most 100) consecutive
wrong codes, the authenticator's codes stay refused, whatever the delay, until a recovery code
is accepted or an administrator unlocks the account; the audit trail says so."""

import pytest

from otp_app import services
from otp_app.models import SecurityEvent, UserModel
from tests.helpers import add_passkey, code_for, guess_wrong, pending_login, prove_passkey, validate, wrong_code
from tests.support.authenticator import SoftwareAuthenticator

LIMIT = 8
REFUSED = {
    "status": "fail",
    "message": "Too many wrong codes: sign in with a recovery code, or ask an administrator to unlock the account",
}


@pytest.fixture
def limit(settings):
    settings.TWOFA_CODE_FAILURE_LIMIT = LIMIT
    settings.TWOFA_LOCKOUT_THRESHOLD = 3
    settings.TWOFA_LOCKOUT_MAX_SECONDS = 60
    return LIMIT


def guess_until_the_limit(user, clock, times: int = LIMIT) -> None:
    """`times` wrong codes, each from a new login after the timed lock of the one before ended."""
    for _ in range(times):
        guess_wrong(pending_login(user.email), user, clock, 1)
        clock.tick(61)


@pytest.fixture
def recovery_codes(user_with_2fa):
    return services._replace_recovery_codes(user=user_with_2fa)


def test_the_default_limit_is_nists_one_hundred(settings):
    assert settings.TWOFA_CODE_FAILURE_LIMIT == 100


def test_after_the_limit_even_the_right_code_is_refused_long_after(user_with_2fa, clock, limit):
    guess_until_the_limit(user_with_2fa, clock)
    clock.tick(7 * 24 * 3600)  # a week: no delay ends this lock
    client = pending_login(user_with_2fa.email)

    response = validate(client, code_for(user_with_2fa.otp_secret, clock))

    assert response.status_code == 429
    assert response.json() == REFUSED
    assert client.get("/api/auth/me").status_code == 403


def test_refusals_after_the_limit_are_not_counted(user_with_2fa, clock, limit):
    guess_until_the_limit(user_with_2fa, clock)
    client = pending_login(user_with_2fa.email)
    for _ in range(3):
        assert validate(client, wrong_code(user_with_2fa.otp_secret, clock)).status_code == 429

    assert UserModel.objects.get(pk=user_with_2fa.pk).failed_attempts == LIMIT


def test_the_lock_is_recorded_once(user_with_2fa, clock, limit):
    guess_until_the_limit(user_with_2fa, clock)
    validate(pending_login(user_with_2fa.email), wrong_code(user_with_2fa.otp_secret, clock))

    [event] = SecurityEvent.objects.filter(kind=SecurityEvent.Kind.CODES_LOCKED)
    assert event.user_id == user_with_2fa.pk


def test_refused_passkey_answers_count_towards_the_limit_and_the_lock_is_recorded(
    full_2fa_client, user_with_2fa, clock, limit
):
    # One count of wrong attempts for every factor: answers a passkey did not sign lock the
    # codes too, and the owner is told (the event sends the security email).
    authenticator = SoftwareAuthenticator()
    assert add_passkey(full_2fa_client, authenticator).status_code == 201
    for _ in range(LIMIT):
        assert (
            prove_passkey(pending_login(user_with_2fa.email), authenticator, origin="https://evil.example").status_code
            == 400
        )
        clock.tick(61)

    [event] = SecurityEvent.objects.filter(kind=SecurityEvent.Kind.CODES_LOCKED)
    assert event.user_id == user_with_2fa.pk
    response = validate(pending_login(user_with_2fa.email), code_for(user_with_2fa.otp_secret, clock))
    assert response.status_code == 429 and response.json() == REFUSED


def test_one_wrong_code_fewer_than_the_limit_leaves_the_codes_working(user_with_2fa, clock, limit):
    guess_until_the_limit(user_with_2fa, clock, times=LIMIT - 1)

    assert validate(pending_login(user_with_2fa.email), code_for(user_with_2fa.otp_secret, clock)).status_code == 200


def test_a_recovery_code_signs_in_and_unlocks_the_codes(user_with_2fa, recovery_codes, clock, limit):
    guess_until_the_limit(user_with_2fa, clock)

    assert validate(pending_login(user_with_2fa.email), recovery_codes[0]).status_code == 200
    clock.tick(30)
    assert validate(pending_login(user_with_2fa.email), code_for(user_with_2fa.otp_secret, clock)).status_code == 200


def test_an_administrators_unlock_unlocks_the_codes(user_with_2fa, clock, limit):
    guess_until_the_limit(user_with_2fa, clock)

    services.unlock(user=user_with_2fa)

    assert validate(pending_login(user_with_2fa.email), code_for(user_with_2fa.otp_secret, clock)).status_code == 200


def test_a_stale_full_session_cannot_use_a_locked_factor_to_re_authenticate(
    full_2fa_client, user_with_2fa, clock, limit, settings
):
    guess_until_the_limit(user_with_2fa, clock)
    clock.tick(settings.TWOFA_REAUTH_SECONDS - 8 * 61 + 1)

    response = full_2fa_client.post(
        "/api/auth/otp/disable", {"token": code_for(user_with_2fa.otp_secret, clock)}, format="json"
    )

    assert response.status_code == 429
    assert UserModel.objects.get(pk=user_with_2fa.pk).otp_enabled
