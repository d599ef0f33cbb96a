"""POST /api/auth/otp/validate: the second step of login."""

import pytest
from rest_framework.test import APIClient

from otp_app.models import UserModel
from tests.helpers import INVALID, NOT_ENROLLED, code_for, login, validate, wrong_code


def test_right_code_answers_otp_valid_true(pending_client, user_with_2fa, clock):
    response = validate(pending_client, code_for(user_with_2fa.otp_secret, clock), user_id=str(user_with_2fa.pk))
    assert response.status_code == 200
    assert response.json() == {"otp_valid": True}


def test_right_code_turns_the_pending_session_into_a_full_one(pending_client, user_with_2fa, clock):
    assert pending_client.get("/api/auth/me").status_code == 403
    old_key = pending_client.cookies["sessionid"].value
    assert validate(pending_client, code_for(user_with_2fa.otp_secret, clock)).status_code == 200
    assert pending_client.cookies["sessionid"].value != old_key
    me = pending_client.get("/api/auth/me")
    assert me.status_code == 200
    assert me.json()["user"]["id"] == str(user_with_2fa.pk)


def test_wrong_code_is_400_with_the_exact_message(pending_client, user_with_2fa, clock):
    response = validate(pending_client, wrong_code(user_with_2fa.otp_secret, clock))
    assert response.status_code == 400
    assert response.json() == INVALID
    assert pending_client.get("/api/auth/me").status_code == 403  # still pending


@pytest.mark.parametrize("token", ["abcdef", "12345", "1234567", "１２３４５６", "------"])
def test_malformed_code_is_400_with_the_exact_message(pending_client, token):
    response = validate(pending_client, token)
    assert response.status_code == 400
    assert response.json() == INVALID


def test_expired_code_is_refused(pending_client, user_with_2fa, clock):
    code = code_for(user_with_2fa.otp_secret, clock)
    clock.tick(60)
    response = validate(pending_client, code)
    assert response.status_code == 400
    assert response.json() == INVALID


def test_account_without_2fa_is_404_otp_must_be_verified_first(logged_in_client, user):
    response = validate(logged_in_client, "123456")
    assert response.status_code == 404
    assert response.json() == NOT_ENROLLED


def test_account_with_only_a_generated_secret_is_404(logged_in_client, user, clock):
    secret = logged_in_client.post("/api/auth/otp/generate", {}, format="json").json()["base32"]
    response = validate(logged_in_client, code_for(secret, clock))
    assert response.status_code == 404
    assert response.json() == NOT_ENROLLED


def test_full_session_of_a_2fa_account_may_validate_again(full_2fa_client, user_with_2fa, clock):
    clock.tick(30)
    response = validate(full_2fa_client, code_for(user_with_2fa.otp_secret, clock))
    assert response.status_code == 200
    assert response.json() == {"otp_valid": True}


def test_validate_needs_a_session(api, user_with_2fa, clock):
    response = validate(api, code_for(user_with_2fa.otp_secret, clock))
    assert response.status_code in (401, 403)
    assert response.json()["status"] == "fail"
    assert UserModel.objects.get(pk=user_with_2fa.pk).last_accepted_step is None


def test_pending_login_expires(pending_client, user_with_2fa, clock, settings):
    clock.tick(settings.TWOFA_PENDING_SECONDS + 1)
    response = validate(pending_client, code_for(user_with_2fa.otp_secret, clock))
    assert response.status_code in (401, 403)


@pytest.mark.parametrize(
    "token",
    ["right", "wrong", "expired", "malformed"],
)
def test_a_2xx_never_carries_otp_valid_false(pending_client, user_with_2fa, clock, token):
    secret = user_with_2fa.otp_secret
    codes = {
        "right": code_for(secret, clock),
        "wrong": wrong_code(secret, clock),
        "expired": code_for(secret, clock, steps_ahead=-3),
        "malformed": "12a456",
    }
    response = validate(pending_client, codes[token])
    if 200 <= response.status_code < 300:
        assert response.json() == {"otp_valid": True}
    else:
        assert 400 <= response.status_code < 500
        assert "otp_valid" not in response.json()
    assert (response.status_code == 200) is (token == "right")


def test_validate_after_password_change_of_a_pending_login_is_refused(pending_client, user_with_2fa, clock):
    stored = UserModel.objects.get(pk=user_with_2fa.pk)
    stored.set_password("a completely different passphrase")
    stored.save()
    response = validate(pending_client, code_for(user_with_2fa.otp_secret, clock))
    assert response.status_code in (401, 403)


def test_each_login_of_a_2fa_account_needs_its_own_code(user_with_2fa, clock):
    first, second = APIClient(), APIClient()
    login(first, user_with_2fa.email)
    login(second, user_with_2fa.email)
    assert validate(first, code_for(user_with_2fa.otp_secret, clock)).status_code == 200
    # The other login is still pending: the first one's code proved nothing for it.
    assert second.get("/api/auth/me").status_code == 403
