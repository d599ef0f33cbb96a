"""POST /api/auth/otp/verify: a code of the generated secret switches 2FA on."""

import pytest
from rest_framework.test import APIClient

from otp_app import totp
from otp_app.models import UserModel
from tests.helpers import (
    BASE_USER_KEYS,
    INVALID,
    VALIDATE,
    VERIFY,
    code_for,
    generated_secret,
    login,
    plain,
    verify,
    wrong_code,
)

# Additions may add keys old clients ignore (the recovery codes, shown once).
VERIFY_ADDITIONS = {"recovery_codes"}


def base_user(user: dict) -> dict:
    """The user's keys that every client reads; additions may add keys, never change these."""
    return {key: user[key] for key in BASE_USER_KEYS}


def test_right_code_switches_2fa_on_and_answers_with_the_user(logged_in_client, user, clock):
    secret = generated_secret(logged_in_client)
    response = verify(logged_in_client, code_for(secret, clock), user_id=str(user.pk))
    assert response.status_code == 200
    body = response.json()
    assert {"otp_verified", "user"} <= set(body) <= {"otp_verified", "user"} | VERIFY_ADDITIONS
    assert body["otp_verified"] is True
    assert base_user(body["user"]) == {
        "id": str(user.pk),
        "name": user.name,
        "email": user.email,
        "otp_enabled": True,
        "otp_verified": True,
    }
    stored = UserModel.objects.get(pk=user.pk)
    assert (stored.otp_enabled, stored.otp_verified) == (True, True)
    assert (plain(stored.otp_secret), stored.pending_secret) == (secret, "")


def test_after_verify_login_needs_the_second_factor(logged_in_client, user, clock):
    secret = generated_secret(logged_in_client)
    assert verify(logged_in_client, code_for(secret, clock)).status_code == 200
    device = APIClient()
    assert login(device, user.email).json()["user"]["otp_enabled"] is True
    assert device.get("/api/auth/me").status_code == 403  # pending until otp/validate


@pytest.mark.parametrize("spaced", ["{0} {1}", " {0}{1} "])
def test_code_typed_with_spaces_is_accepted(logged_in_client, clock, spaced):
    secret = generated_secret(logged_in_client)
    code = code_for(secret, clock)
    assert verify(logged_in_client, spaced.format(code[:3], code[3:])).status_code == 200


@pytest.mark.parametrize("steps_ahead", [-1, 1])
def test_code_of_a_neighbouring_step_is_accepted(logged_in_client, clock, steps_ahead):
    secret = generated_secret(logged_in_client)
    assert verify(logged_in_client, code_for(secret, clock, steps_ahead=steps_ahead)).status_code == 200


def test_wrong_code_is_400_with_the_exact_message(logged_in_client, user, clock):
    secret = generated_secret(logged_in_client)
    response = verify(logged_in_client, wrong_code(secret, clock))
    assert response.status_code == 400
    assert response.json() == INVALID
    stored = UserModel.objects.get(pk=user.pk)
    assert (stored.otp_enabled, stored.otp_secret, plain(stored.pending_secret)) == (False, "", secret)


@pytest.mark.parametrize("token", ["abcdef", "12345", "1234567", "١٢٣٤٥٦", "12 34 5"])
def test_malformed_code_is_400_with_the_exact_message(logged_in_client, token):
    generated_secret(logged_in_client)
    response = verify(logged_in_client, token)
    assert response.status_code == 400
    assert response.json() == INVALID


@pytest.mark.parametrize("seconds", [60, 61, 90, 300])
def test_expired_code_is_refused(logged_in_client, user, clock, seconds):
    secret = generated_secret(logged_in_client)
    code = code_for(secret, clock)
    clock.tick(seconds)
    response = verify(logged_in_client, code)
    assert response.status_code == 400
    assert response.json() == INVALID
    assert UserModel.objects.get(pk=user.pk).otp_enabled is False


def test_code_from_the_future_beyond_the_window_is_refused(logged_in_client, clock):
    secret = generated_secret(logged_in_client)
    response = verify(logged_in_client, code_for(secret, clock, steps_ahead=2))
    assert response.status_code == 400
    assert response.json() == INVALID


def test_verify_before_generate_is_400_with_a_string_message(logged_in_client, user, clock):
    code = totp.code_at(secret=totp.new_secret(), step=clock.step())
    response = verify(logged_in_client, code)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "fail"
    assert isinstance(body["message"], str) and body["message"]
    assert UserModel.objects.get(pk=user.pk).otp_enabled is False


def test_code_of_an_older_generated_secret_is_refused(logged_in_client, user, clock):
    first = generated_secret(logged_in_client)
    second = generated_secret(logged_in_client)
    response = verify(logged_in_client, code_for(first, clock))
    assert response.status_code == 400
    assert response.json() == INVALID
    assert UserModel.objects.get(pk=user.pk).otp_enabled is False
    assert verify(logged_in_client, code_for(second, clock)).status_code == 200
    assert plain(UserModel.objects.get(pk=user.pk).otp_secret) == second


def test_verify_refuses_a_pending_session(pending_client, user_with_2fa, clock):
    response = verify(pending_client, code_for(user_with_2fa.otp_secret, clock))
    assert response.status_code == 403
    assert response.json()["status"] == "fail"


def test_verify_needs_a_session(api, user, clock):
    response = verify(api, "123456")
    assert response.status_code in (401, 403)
    assert isinstance(response.json()["message"], str)


def test_verify_needs_a_token(logged_in_client):
    generated_secret(logged_in_client)
    response = logged_in_client.post(VERIFY, {}, format="json")
    assert response.status_code == 400
    assert "token" in response.json()["errors"]
    assert isinstance(response.json()["message"], str)


def test_verify_without_pending_secret_confirms_the_secret_in_force(full_2fa_client, user_with_2fa, clock):
    clock.tick(30)
    response = verify(full_2fa_client, code_for(user_with_2fa.otp_secret, clock))
    assert response.status_code == 200
    assert response.json()["user"]["otp_enabled"] is True
    assert UserModel.objects.get(pk=user_with_2fa.pk).otp_secret == user_with_2fa.otp_secret


def test_verified_code_then_opens_validate_only_with_later_codes(logged_in_client, user, clock):
    secret = generated_secret(logged_in_client)
    assert verify(logged_in_client, code_for(secret, clock)).status_code == 200
    clock.tick(30)
    device = APIClient()
    login(device, user.email)
    response = device.post(VALIDATE, {"token": code_for(secret, clock)}, format="json")
    assert response.status_code == 200
    assert response.json() == {"otp_valid": True}
