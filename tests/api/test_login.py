"""POST /api/auth/login: the documented bodies, which accounts may log in, the session cookie it
sets, and password hashes of earlier versions upgraded at login."""

from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password
from rest_framework.test import APIClient

from otp_app.models import UserModel
from tests.helpers import PASSWORD, USER_KEYS, login, make_user

INCORRECT = {"status": "fail", "message": "Incorrect email or password"}
SessionStore = import_module(settings.SESSION_ENGINE).SessionStore


def test_login_answers_200_with_status_and_exactly_the_user(api, user, clock):
    response = login(api, "ann@example.com")

    assert response.status_code == 200
    assert response.json() == {
        "status": "success",
        "user": {
            "id": str(user.pk),
            "name": "Ann",
            "email": "ann@example.com",
            "otp_enabled": False,
            "otp_verified": False,
            "recovery_codes_left": 0,
            "passkeys": 0,
            "two_factor_enabled": False,
        },
    }


def test_login_of_an_account_with_2fa_reports_it_in_user(api, user_with_2fa, clock):
    user = login(api, "ann@example.com").json()["user"]

    assert set(user) == USER_KEYS
    assert (user["otp_enabled"], user["otp_verified"]) == (True, True)


@pytest.mark.parametrize(
    "email, password",
    [
        ("nobody@example.com", PASSWORD),
        ("ann@example.com", "wrong password"),
        ("ann@example.com", PASSWORD.upper()),
        ("ann@example.com", PASSWORD + " "),
        ("not-an-email", PASSWORD),
    ],
    ids=["unknown-email", "wrong-password", "password-other-case", "password-extra-space", "malformed-email"],
)
def test_login_with_unknown_email_or_wrong_password_is_400_incorrect(api, user, clock, email, password):
    response = login(api, email, password)

    assert response.status_code == 400
    assert response.json() == INCORRECT
    assert settings.SESSION_COOKIE_NAME not in response.cookies


def test_login_of_an_inactive_account_is_refused_like_a_wrong_password(api, db, clock):
    make_user(is_active=False)

    response = login(api, "ann@example.com")

    assert response.status_code == 400
    assert response.json() == INCORRECT
    assert api.get("/api/auth/me").status_code == 401


@pytest.mark.parametrize("email", ["ANN@EXAMPLE.COM", "Ann@Example.com", "  ann@example.com  "])
def test_login_matches_the_email_case_insensitively(api, user, clock, email):
    response = login(api, email)

    assert response.status_code == 200
    assert response.json()["user"]["id"] == str(user.pk)


def test_login_sets_an_httponly_samesite_lax_session_cookie(api, user, clock):
    response = login(api, "ann@example.com")

    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie.value
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"


def test_login_of_an_account_with_2fa_sets_the_same_kind_of_cookie(api, user_with_2fa, clock):
    cookie = login(api, "ann@example.com").cookies[settings.SESSION_COOKIE_NAME]

    assert cookie.value
    assert (cookie["httponly"], cookie["samesite"]) == (True, "Lax")


@pytest.mark.parametrize("account", ["user", "user_with_2fa"])
def test_login_rotates_the_session_key_and_drops_the_old_session(request, clock, account):
    request.getfixturevalue(account)
    client = APIClient()
    before = client.session  # a session that exists before login, e.g. planted by an attacker
    before["left_over"] = "from the previous visitor"
    before.save()

    assert login(client, "ann@example.com").status_code == 200

    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before.session_key
    assert not SessionStore().exists(before.session_key)
    assert "left_over" not in SessionStore(session_key=after).load()


def test_failed_login_does_not_log_in_a_session_that_exists_before(api, user, clock):
    api.session.save()

    login(api, "ann@example.com", "wrong password")

    assert api.get("/api/auth/me").status_code == 401


def test_login_response_never_contains_the_totp_secret_or_an_otpauth_url(api, user_with_2fa, clock):
    user_with_2fa.pending_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    user_with_2fa.save()

    response = login(api, "ann@example.com")

    content = response.content.decode()
    assert response.status_code == 200
    assert user_with_2fa.otp_secret not in content
    assert user_with_2fa.pending_secret not in content
    assert "otpauth" not in content
    assert "base32" not in content


# --- Older password hashes ----------------------------------------------------------------------------


def test_pbkdf2_hash_is_still_accepted_at_login_and_upgraded_to_argon2(api, db, clock):
    user = make_user()
    UserModel.objects.filter(pk=user.pk).update(password=make_password(PASSWORD, hasher="pbkdf2_sha256"))

    response = login(api, "ann@example.com")

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")
    assert user.check_password(PASSWORD)


def test_pbkdf2_hash_with_a_wrong_password_is_refused_and_left_alone(api, db, clock):
    user = make_user()
    old_hash = make_password(PASSWORD, hasher="pbkdf2_sha256")
    UserModel.objects.filter(pk=user.pk).update(password=old_hash)

    assert login(api, "ann@example.com", "wrong password").status_code == 400

    user.refresh_from_db()
    assert user.password == old_hash
