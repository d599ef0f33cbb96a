"""POST /api/auth/otp/generate: a new secret for the session's account, and enrolment that cannot
lock a person out."""

from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from otp_app.models import UserModel
from tests.helpers import VALIDATE, VERIFY, code_for, generate, login, plain


def label_of(otpauth_url: str) -> str:
    return unquote(urlsplit(otpauth_url).path.lstrip("/"))


def query_of(otpauth_url: str) -> dict:
    return parse_qs(urlsplit(otpauth_url).query)


# Additions may add keys old clients ignore; `qr_code` is the documented one.
GENERATE_KEYS = {"base32", "otpauth_url"}
DOCUMENTED_ADDITIONS = {"qr_code"}


def test_generate_answers_200_with_base32_and_otpauth_url(logged_in_client, user):
    response = generate(logged_in_client, user_id=str(user.pk), email=user.email)
    assert response.status_code == 200
    body = response.json()
    assert GENERATE_KEYS <= set(body) <= GENERATE_KEYS | DOCUMENTED_ADDITIONS
    assert isinstance(body["base32"], str) and len(body["base32"]) == 32
    assert body["otpauth_url"].startswith("otpauth://totp/")
    assert query_of(body["otpauth_url"])["secret"] == [body["base32"]]


def test_generate_works_with_an_empty_body(logged_in_client, user):
    response = generate(logged_in_client)
    assert response.status_code == 200
    assert plain(UserModel.objects.get(pk=user.pk).pending_secret) == response.json()["base32"]


def test_otpauth_label_is_the_accounts_email_not_the_one_in_the_body(logged_in_client, user, other_user):
    response = generate(logged_in_client, user_id=str(user.pk), email=other_user.email)
    assert response.status_code == 200
    url = response.json()["otpauth_url"]
    assert label_of(url) == f"{settings.TWOFA_ISSUER}:{user.email}"
    assert other_user.email not in unquote(url)


@pytest.mark.parametrize("email", [None, "", "mallory@evil.example", "not an email"])
def test_email_in_the_body_is_ignored_whatever_it_is(logged_in_client, user, email):
    response = generate(logged_in_client, email=email)
    assert response.status_code == 200
    assert label_of(response.json()["otpauth_url"]).endswith(f":{user.email}")


def test_issuer_is_the_configured_twofa_issuer(logged_in_client):
    url = generate(logged_in_client).json()["otpauth_url"]
    assert query_of(url)["issuer"] == [settings.TWOFA_ISSUER]
    assert label_of(url).startswith(f"{settings.TWOFA_ISSUER}:")


def test_issuer_follows_the_setting(logged_in_client, settings):
    settings.TWOFA_ISSUER = "Acme Secure"
    url = generate(logged_in_client).json()["otpauth_url"]
    assert query_of(url)["issuer"] == ["Acme Secure"]
    assert label_of(url).startswith("Acme Secure:")


def test_each_call_hands_out_a_new_secret(logged_in_client, user):
    secrets = [generate(logged_in_client).json()["base32"] for _ in range(3)]
    assert len(set(secrets)) == 3
    # Only the latest one is waiting for otp/verify.
    assert plain(UserModel.objects.get(pk=user.pk).pending_secret) == secrets[-1]


def test_generate_does_not_switch_2fa_on(logged_in_client, user):
    secret = generate(logged_in_client).json()["base32"]
    stored = UserModel.objects.get(pk=user.pk)
    assert (stored.otp_enabled, stored.otp_verified, stored.otp_secret) == (False, False, "")
    assert plain(stored.pending_secret) == secret
    # A new login still gives a full session directly: nothing to prove yet.
    assert login(APIClient(), user.email).json()["user"]["otp_enabled"] is False


def test_generate_needs_a_session(api, user):
    response = generate(api)
    assert response.status_code in (401, 403)
    assert response.json()["status"] == "fail"
    assert UserModel.objects.get(pk=user.pk).pending_secret == ""


def test_generate_refuses_a_pending_session(pending_client, user_with_2fa):
    response = generate(pending_client)
    assert response.status_code == 403
    assert "base32" not in response.json()
    assert UserModel.objects.get(pk=user_with_2fa.pk).pending_secret == ""


# --- Enrolment cannot lock a person out ------------------------------------------------------------


def test_generate_while_2fa_is_on_keeps_the_secret_in_force(full_2fa_client, user_with_2fa):
    old = user_with_2fa.otp_secret
    new = generate(full_2fa_client).json()["base32"]
    assert new != old
    stored = UserModel.objects.get(pk=user_with_2fa.pk)
    assert plain(stored.otp_secret) == plain(old)
    assert plain(stored.pending_secret) == new
    assert stored.otp_enabled and stored.otp_verified


def test_old_secret_keeps_working_for_validate_until_the_new_one_is_verified(full_2fa_client, user_with_2fa, clock):
    old = user_with_2fa.otp_secret
    new = generate(full_2fa_client).json()["base32"]

    # Someone who never scanned the new QR code still logs in with the old secret.
    clock.tick(30)
    other_device = APIClient()
    assert login(other_device, user_with_2fa.email).json()["user"]["otp_enabled"] is True
    response = other_device.post(VALIDATE, {"token": code_for(old, clock)}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"otp_valid": True}
    # ... and a code of the unproven new secret does not open a login.
    clock.tick(30)
    later_device = APIClient()
    login(later_device, user_with_2fa.email)
    response = later_device.post(VALIDATE, {"token": code_for(new, clock)}, format="json")
    assert response.status_code == 400


def test_after_verify_of_the_new_secret_the_old_one_is_refused(full_2fa_client, user_with_2fa, clock):
    old = user_with_2fa.otp_secret
    new = generate(full_2fa_client).json()["base32"]
    clock.tick(30)
    response = full_2fa_client.post(VERIFY, {"token": code_for(new, clock)}, format="json")
    assert response.status_code == 200, response.content

    stored = UserModel.objects.get(pk=user_with_2fa.pk)
    assert (plain(stored.otp_secret), stored.pending_secret) == (new, "")

    clock.tick(30)
    device = APIClient()
    login(device, user_with_2fa.email)
    response = device.post(VALIDATE, {"token": code_for(old, clock)}, format="json")
    assert response.status_code == 400
    assert response.json() == {"status": "fail", "message": "Token is invalid or user doesn't exist"}
    response = device.post(VALIDATE, {"token": code_for(new, clock)}, format="json")
    assert response.status_code == 200
    assert response.json() == {"otp_valid": True}


def test_old_secret_code_does_not_prove_the_pending_secret(full_2fa_client, user_with_2fa, clock):
    old = user_with_2fa.otp_secret
    new = generate(full_2fa_client).json()["base32"]
    clock.tick(30)
    response = full_2fa_client.post(VERIFY, {"token": code_for(old, clock)}, format="json")
    assert response.status_code == 400
    stored = UserModel.objects.get(pk=user_with_2fa.pk)
    assert (plain(stored.otp_secret), plain(stored.pending_secret)) == (plain(old), new)
