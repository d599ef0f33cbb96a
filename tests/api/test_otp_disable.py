"""POST /api/auth/otp/disable: switch 2FA off for the session's account."""

from rest_framework.test import APIClient

from otp_app.models import UserModel
from tests.helpers import BASE_USER_KEYS, code_for, disable, login, plain, wrong_code


def test_disable_answers_with_the_user_and_both_flags_false(full_2fa_client, user_with_2fa):
    response = disable(full_2fa_client, user_id=str(user_with_2fa.pk))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"otp_disabled", "user"}
    assert body["otp_disabled"] is True
    assert {key: body["user"][key] for key in BASE_USER_KEYS} == {
        "id": str(user_with_2fa.pk),
        "name": user_with_2fa.name,
        "email": user_with_2fa.email,
        "otp_enabled": False,
        "otp_verified": False,
    }


def test_disable_clears_the_secrets_in_the_database(full_2fa_client, user_with_2fa):
    full_2fa_client.post("/api/auth/otp/generate", {}, format="json")  # a pending secret too
    assert disable(full_2fa_client).status_code == 200
    stored = UserModel.objects.get(pk=user_with_2fa.pk)
    assert (stored.otp_enabled, stored.otp_verified) == (False, False)
    assert (stored.otp_secret, stored.pending_secret) == ("", "")


def test_after_disable_login_gives_a_full_session_directly(full_2fa_client, user_with_2fa):
    assert disable(full_2fa_client).status_code == 200
    device = APIClient()
    response = login(device, user_with_2fa.email)
    assert response.status_code == 200
    assert response.json()["user"]["otp_enabled"] is False
    assert device.get("/api/auth/me").status_code == 200


def test_after_disable_validate_is_404(full_2fa_client, user_with_2fa, clock):
    secret = user_with_2fa.otp_secret
    assert disable(full_2fa_client).status_code == 200
    clock.tick(30)
    response = full_2fa_client.post("/api/auth/otp/validate", {"token": code_for(secret, clock)}, format="json")
    assert response.status_code == 404
    assert response.json() == {"status": "fail", "message": "OTP must be verified first"}


def test_after_disable_the_old_secret_cannot_be_verified_again(full_2fa_client, user_with_2fa, clock):
    secret = user_with_2fa.otp_secret
    assert disable(full_2fa_client).status_code == 200
    clock.tick(30)
    response = full_2fa_client.post("/api/auth/otp/verify", {"token": code_for(secret, clock)}, format="json")
    assert response.status_code == 400
    assert UserModel.objects.get(pk=user_with_2fa.pk).otp_enabled is False


def test_disable_without_2fa_is_harmless(logged_in_client, user):
    response = disable(logged_in_client)
    assert response.status_code == 200
    assert response.json()["user"]["otp_enabled"] is False


def test_disable_refuses_a_pending_session(pending_client, user_with_2fa):
    response = disable(pending_client)
    assert response.status_code == 403
    assert response.json()["status"] == "fail"
    stored = UserModel.objects.get(pk=user_with_2fa.pk)
    assert stored.otp_enabled is True
    assert stored.otp_secret == user_with_2fa.otp_secret


def test_disable_needs_a_session(api, user_with_2fa):
    response = disable(api, user_id=str(user_with_2fa.pk))
    assert response.status_code in (401, 403)
    assert UserModel.objects.get(pk=user_with_2fa.pk).otp_enabled is True


def test_disable_then_enrol_again_works(full_2fa_client, user_with_2fa, clock):
    assert disable(full_2fa_client).status_code == 200
    new = full_2fa_client.post("/api/auth/otp/generate", {}, format="json").json()["base32"]
    clock.tick(30)
    response = full_2fa_client.post("/api/auth/otp/verify", {"token": code_for(new, clock)}, format="json")
    assert response.status_code == 200
    assert response.json()["user"]["otp_enabled"] is True
    assert plain(UserModel.objects.get(pk=user_with_2fa.pk).otp_secret) == new


# --- re-authentication (README): a session that proved 2FA long ago must send a fresh code ------


def test_disable_long_after_the_second_factor_needs_a_code(full_2fa_client, user_with_2fa, clock, settings):
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)
    response = disable(full_2fa_client)
    assert response.status_code == 403
    assert isinstance(response.json()["message"], str)
    assert UserModel.objects.get(pk=user_with_2fa.pk).otp_enabled is True


def test_disable_long_after_the_second_factor_refuses_a_wrong_code(full_2fa_client, user_with_2fa, clock, settings):
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)
    response = disable(full_2fa_client, token=wrong_code(user_with_2fa.otp_secret, clock))
    assert response.status_code == 400
    assert response.json() == {"status": "fail", "message": "Token is invalid or user doesn't exist"}
    assert UserModel.objects.get(pk=user_with_2fa.pk).otp_enabled is True


def test_disable_long_after_the_second_factor_works_with_a_current_code(
    full_2fa_client, user_with_2fa, clock, settings
):
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)
    response = disable(full_2fa_client, token=code_for(user_with_2fa.otp_secret, clock))
    assert response.status_code == 200
    assert response.json()["user"]["otp_enabled"] is False
