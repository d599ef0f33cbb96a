"""Every change of an account's factors falls under the re-authentication rule.

With 2FA on, replacing the secret (otp/generate, then otp/verify) needs the second factor proven
in this session within TWOFA_REAUTH_SECONDS, or a current code of the secret in force. A code of
the secret being enrolled proves that secret only, never the person, so it does not renew the
proof that otp/disable relies on.
"""

from otp_app.models import UserModel
from tests.helpers import DISABLE, VERIFY, code_for, generate, wrong_code

CONFIRM = "Confirm with a code"


def stored_secret(user) -> str:
    return UserModel.objects.get(pk=user.pk).otp_secret


def pending_secret(user) -> str:
    return UserModel.objects.get(pk=user.pk).pending_secret


def go_stale(clock, settings) -> None:
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 31)


def test_a_stale_session_cannot_start_replacing_the_secret(full_2fa_client, user_with_2fa, clock, settings):
    go_stale(clock, settings)

    response = generate(full_2fa_client)

    assert response.status_code == 403
    assert response.json()["message"].startswith(CONFIRM)
    assert "base32" not in response.json()
    assert pending_secret(user_with_2fa) == ""


def test_a_stale_session_replaces_the_secret_with_a_current_code_of_the_old_one(
    full_2fa_client, user_with_2fa, clock, settings
):
    old = stored_secret(user_with_2fa)
    go_stale(clock, settings)

    response = generate(full_2fa_client, token=code_for(old, clock))
    assert response.status_code == 200, response.content
    new = response.json()["base32"]
    clock.tick(30)
    assert full_2fa_client.post(VERIFY, {"token": code_for(new, clock)}, format="json").status_code == 200

    assert stored_secret(user_with_2fa) != old


def test_a_code_of_the_new_secret_does_not_stand_in_for_the_old_one_at_generate(
    full_2fa_client, user_with_2fa, clock, settings
):
    go_stale(clock, settings)

    response = generate(full_2fa_client, token=wrong_code(stored_secret(user_with_2fa), clock))

    assert response.status_code == 400
    assert pending_secret(user_with_2fa) == ""


def test_a_secret_prepared_earlier_cannot_be_verified_from_a_stale_session(
    full_2fa_client, user_with_2fa, clock, settings
):
    old = stored_secret(user_with_2fa)
    new = generate(full_2fa_client).json()["base32"]
    go_stale(clock, settings)

    response = full_2fa_client.post(VERIFY, {"token": code_for(new, clock)}, format="json")

    assert response.status_code == 403
    assert response.json()["message"].startswith(CONFIRM)
    assert stored_secret(user_with_2fa) == old


def test_replacing_the_secret_is_no_fresh_proof_for_disable(full_2fa_client, user_with_2fa, clock, settings):
    # Proven at the start; the replacement happens inside the window; the window then ends.
    clock.tick(settings.TWOFA_REAUTH_SECONDS - 120)
    new = generate(full_2fa_client).json()["base32"]
    assert full_2fa_client.post(VERIFY, {"token": code_for(new, clock)}, format="json").status_code == 200
    clock.tick(150)

    response = full_2fa_client.post(DISABLE, {}, format="json")

    assert response.status_code == 403
    assert UserModel.objects.get(pk=user_with_2fa.pk).otp_enabled


def test_the_stolen_cookie_chain_generate_verify_disable_fails(full_2fa_client, user_with_2fa, clock, settings):
    """The attack the rule stops: a stale full session replaces the factor, then removes it."""
    old = stored_secret(user_with_2fa)
    go_stale(clock, settings)

    assert generate(full_2fa_client).status_code == 403
    assert full_2fa_client.post(DISABLE, {}, format="json").status_code == 403

    assert UserModel.objects.get(pk=user_with_2fa.pk).otp_enabled
    assert stored_secret(user_with_2fa) == old


def test_enrolling_the_first_factor_needs_no_code_and_counts_as_proof(logged_in_client, user, clock, settings):
    go_stale(clock, settings)  # no factor yet: nothing to re-authenticate with
    secret = generate(logged_in_client).json()["base32"]
    assert logged_in_client.post(VERIFY, {"token": code_for(secret, clock)}, format="json").status_code == 200
    clock.tick(60)

    assert logged_in_client.post(DISABLE, {}, format="json").status_code == 200


def test_a_fresh_session_replaces_the_secret_without_a_code(full_2fa_client, user_with_2fa, clock):
    clock.tick(60)
    new = generate(full_2fa_client).json()["base32"]
    clock.tick(30)
    response = full_2fa_client.post(VERIFY, {"token": code_for(new, clock)}, format="json")
    assert response.status_code == 200
    assert response.json()["user"]["otp_enabled"] is True
