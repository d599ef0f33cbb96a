"""Re-authentication before turning 2FA off: otp/disable is accepted when this session proved
the second factor within TWOFA_REAUTH_SECONDS (default 15 minutes), or with a current `token`
in the body; otherwise 403 with a message that says to confirm with a code."""

import pytest
from rest_framework.test import APIClient

from otp_app.models import RecoveryCode, UserModel
from tests.helpers import GENERATE, INVALID, VALIDATE, VERIFY, code_for, disable, login, wrong_code


def still_on(user) -> bool:
    return UserModel.objects.get(pk=user.pk).otp_enabled


def assert_needs_a_code(response, user) -> None:
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["status"] == "fail"
    assert isinstance(body["message"], str)
    assert "code" in body["message"].lower()
    assert "otp_disabled" not in body
    assert still_on(user)


def test_the_default_window_is_15_minutes(settings):
    assert settings.TWOFA_REAUTH_SECONDS == 15 * 60


def test_the_react_flow_login_validate_disable_needs_no_extra_code(user_with_2fa, clock):
    app = APIClient()
    assert login(app, user_with_2fa.email).json()["user"]["otp_enabled"] is True
    assert app.post(VALIDATE, {"token": code_for(user_with_2fa.otp_secret, clock)}, format="json").status_code == 200
    clock.tick(20)

    response = disable(app, user_id=str(user_with_2fa.pk))

    assert response.status_code == 200
    assert response.json()["otp_disabled"] is True
    assert not still_on(user_with_2fa)


def test_disable_just_inside_the_window_needs_no_code(full_2fa_client, user_with_2fa, clock, settings):
    clock.tick(settings.TWOFA_REAUTH_SECONDS - 1)
    assert disable(full_2fa_client).status_code == 200


def test_disable_after_the_window_without_a_code_is_403_asking_for_a_code(
    full_2fa_client, user_with_2fa, clock, settings
):
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)
    assert_needs_a_code(disable(full_2fa_client), user_with_2fa)


def test_disable_hours_later_without_a_code_is_refused(no_idle_limit, full_2fa_client, user_with_2fa, clock):
    clock.tick(6 * 60 * 60)
    assert_needs_a_code(disable(full_2fa_client, user_id=str(user_with_2fa.pk)), user_with_2fa)


def test_disable_after_the_window_with_a_current_code_is_accepted(full_2fa_client, user_with_2fa, clock, settings):
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)

    response = disable(full_2fa_client, token=code_for(user_with_2fa.otp_secret, clock))

    assert response.status_code == 200
    assert response.json()["otp_disabled"] is True
    assert not still_on(user_with_2fa)


def test_disable_after_the_window_with_a_wrong_code_is_refused(full_2fa_client, user_with_2fa, clock, settings):
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)

    response = disable(full_2fa_client, token=wrong_code(user_with_2fa.otp_secret, clock))

    assert response.status_code == 400
    assert response.json() == INVALID
    assert still_on(user_with_2fa)


def test_disable_with_a_code_already_used_elsewhere_is_refused(full_2fa_client, user_with_2fa, clock, settings):
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)
    used = code_for(user_with_2fa.otp_secret, clock)
    elsewhere = APIClient()
    assert login(elsewhere, user_with_2fa.email).status_code == 200
    assert elsewhere.post(VALIDATE, {"token": used}, format="json").status_code == 200

    assert disable(full_2fa_client, token=used).status_code == 400
    assert still_on(user_with_2fa)


def test_disable_with_an_expired_code_is_refused(full_2fa_client, user_with_2fa, clock, settings):
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)
    old = code_for(user_with_2fa.otp_secret, clock, steps_ahead=-5)

    assert disable(full_2fa_client, token=old).status_code == 400
    assert still_on(user_with_2fa)


def test_wrong_codes_at_disable_count_towards_the_lockout(full_2fa_client, user_with_2fa, clock, settings):
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)
    for _ in range(settings.TWOFA_LOCKOUT_THRESHOLD):
        assert disable(full_2fa_client, token=wrong_code(user_with_2fa.otp_secret, clock)).status_code == 400

    response = disable(full_2fa_client, token=code_for(user_with_2fa.otp_secret, clock))

    assert response.status_code == 429
    assert still_on(user_with_2fa)


def test_a_fresh_validate_opens_the_window_again(full_2fa_client, user_with_2fa, clock, settings):
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)
    assert_needs_a_code(disable(full_2fa_client), user_with_2fa)
    assert (
        full_2fa_client.post(VALIDATE, {"token": code_for(user_with_2fa.otp_secret, clock)}, format="json").status_code
        == 200
    )

    clock.tick(60)
    assert disable(full_2fa_client).status_code == 200


def test_the_window_is_configurable(full_2fa_client, user_with_2fa, clock, settings):
    settings.TWOFA_REAUTH_SECONDS = 60
    clock.tick(59)
    assert still_on(user_with_2fa)
    clock.tick(2)

    assert_needs_a_code(disable(full_2fa_client), user_with_2fa)


def test_a_longer_configured_window_is_honoured(no_idle_limit, full_2fa_client, user_with_2fa, clock, settings):
    settings.TWOFA_REAUTH_SECONDS = 3600
    clock.tick(3000)
    assert disable(full_2fa_client).status_code == 200


def test_enabling_2fa_with_otp_verify_opens_the_window(logged_in_client, user, clock, settings):
    secret = logged_in_client.post(GENERATE, {}, format="json").json()["base32"]
    assert logged_in_client.post(VERIFY, {"token": code_for(secret, clock)}, format="json").status_code == 200

    clock.tick(60)
    assert disable(logged_in_client).status_code == 200


def test_the_window_after_otp_verify_also_closes(logged_in_client, user, clock, settings):
    secret = logged_in_client.post(GENERATE, {}, format="json").json()["base32"]
    assert logged_in_client.post(VERIFY, {"token": code_for(secret, clock)}, format="json").status_code == 200

    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)
    assert_needs_a_code(disable(logged_in_client), user)


def test_a_recovery_code_login_opens_the_window(logged_in_client, user, clock):
    secret = logged_in_client.post(GENERATE, {}, format="json").json()["base32"]
    codes = logged_in_client.post(VERIFY, {"token": code_for(secret, clock)}, format="json").json()["recovery_codes"]
    lost_phone = APIClient()
    assert login(lost_phone, user.email).status_code == 200
    assert lost_phone.post(VALIDATE, {"token": codes[0]}, format="json").status_code == 200

    response = disable(lost_phone)

    assert response.status_code == 200
    assert RecoveryCode.objects.filter(user=user).count() == 0


def test_a_session_open_when_2fa_was_switched_on_elsewhere_has_ended(logged_in_client, user, clock):
    """Logged in while 2FA was off; 2FA was then switched on in another browser: this session,
    which never proved the second factor, is one of the others that the change ended."""
    other_browser = APIClient()
    assert login(other_browser, user.email).status_code == 200
    secret = other_browser.post(GENERATE, {}, format="json").json()["base32"]
    assert other_browser.post(VERIFY, {"token": code_for(secret, clock)}, format="json").status_code == 200

    assert disable(logged_in_client).status_code == 401
    clock.tick(30)
    assert disable(logged_in_client, token=code_for(secret, clock)).status_code == 401


def test_proof_in_one_session_does_not_open_the_window_of_another(user_with_2fa, full_2fa_client, clock, settings):
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)
    second = APIClient()
    assert login(second, user_with_2fa.email).status_code == 200
    assert second.post(VALIDATE, {"token": code_for(user_with_2fa.otp_secret, clock)}, format="json").status_code == 200

    assert_needs_a_code(disable(full_2fa_client), user_with_2fa)
    assert disable(second).status_code == 200


def test_disabling_an_account_without_2fa_needs_no_code(logged_in_client, user, clock, settings):
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)
    response = disable(logged_in_client)
    assert response.status_code == 200
    assert response.json()["otp_disabled"] is True


@pytest.mark.parametrize("token", ["", None])
def test_an_empty_token_after_the_window_is_not_a_proof(full_2fa_client, user_with_2fa, clock, settings, token):
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)
    response = disable(full_2fa_client, token=token)
    assert response.status_code in (400, 403)
    assert still_on(user_with_2fa)
