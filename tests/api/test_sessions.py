"""Session states: a password alone gives a full session only without
2FA; with 2FA it is pending until otp/validate, and pending opens nothing else."""

from importlib import import_module

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from otp_app import totp
from tests.helpers import PASSWORD, code_for, login, make_user, validate, wrong_code

SessionStore = import_module(settings.SESSION_ENGINE).SessionStore

FULL_SESSION_ENDPOINTS = [
    ("get", "/api/auth/me"),
    ("post", "/api/auth/otp/generate"),
    ("post", "/api/auth/otp/verify"),
    ("post", "/api/auth/otp/disable"),
]
ALL_SESSION_ENDPOINTS = [*FULL_SESSION_ENDPOINTS, ("post", "/api/auth/otp/validate")]


def call(client, method, path, user_id=None):
    body = {"token": "123456"}
    if user_id is not None:
        body["user_id"] = str(user_id)
    if method == "get":
        return client.get(path)
    return client.post(path, body, format="json")


def assert_fail(response, status):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == "fail"
    assert isinstance(body["message"], str) and body["message"]


def session_key(client):
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_login_without_2fa_gives_a_full_session(logged_in_client, user):
    response = logged_in_client.get("/api/auth/me")

    assert response.status_code == 200
    assert response.json()["user"]["id"] == str(user.pk)


@pytest.mark.parametrize("method, path", FULL_SESSION_ENDPOINTS)
def test_pending_session_is_403_on_full_session_endpoints(pending_client, user_with_2fa, method, path):
    assert_fail(call(pending_client, method, path, user_with_2fa.pk), 403)


def test_pending_session_cannot_switch_2fa_off(pending_client, user_with_2fa):
    pending_client.post("/api/auth/otp/disable", {}, format="json")

    user_with_2fa.refresh_from_db()
    assert user_with_2fa.otp_enabled and user_with_2fa.otp_secret


def test_pending_session_may_call_validate_and_a_right_code_makes_it_full(pending_client, user_with_2fa, clock):
    response = validate(pending_client, code_for(user_with_2fa.otp_secret, clock))

    assert response.status_code == 200
    assert response.json() == {"otp_valid": True}
    me = pending_client.get("/api/auth/me")
    assert me.status_code == 200
    assert me.json()["user"]["id"] == str(user_with_2fa.pk)


def test_wrong_code_leaves_the_session_pending(pending_client, user_with_2fa, clock):
    wrong = wrong_code(user_with_2fa.otp_secret, clock)

    assert_fail(pending_client.post("/api/auth/otp/validate", {"token": wrong}, format="json"), 400)

    assert_fail(pending_client.get("/api/auth/me"), 403)


def test_validate_rotates_the_session_key_and_the_pending_key_dies(pending_client, user_with_2fa, clock):
    pending_key = session_key(pending_client)

    assert validate(pending_client, code_for(user_with_2fa.otp_secret, clock)).status_code == 200

    assert session_key(pending_client) != pending_key
    assert not SessionStore().exists(pending_key)
    stale = APIClient()
    stale.cookies[settings.SESSION_COOKIE_NAME] = pending_key
    assert_fail(stale.get("/api/auth/me"), 401)


def test_pending_session_is_still_valid_just_before_it_expires(pending_client, user_with_2fa, clock):
    clock.tick(settings.TWOFA_PENDING_SECONDS - 1)

    assert validate(pending_client, code_for(user_with_2fa.otp_secret, clock)).status_code == 200


def test_pending_session_expires_after_twofa_pending_seconds(pending_client, user_with_2fa, clock):
    clock.tick(settings.TWOFA_PENDING_SECONDS + 1)

    assert_fail(validate(pending_client, code_for(user_with_2fa.otp_secret, clock)), 401)
    assert_fail(pending_client.get("/api/auth/me"), 401)


def test_expired_pending_session_is_removed_not_just_refused_for_now(pending_client, user_with_2fa, clock):
    clock.tick(settings.TWOFA_PENDING_SECONDS + 1)
    validate(pending_client, code_for(user_with_2fa.otp_secret, clock))

    clock.tick(-settings.TWOFA_PENDING_SECONDS)

    assert_fail(validate(pending_client, code_for(user_with_2fa.otp_secret, clock)), 401)


def test_pending_session_is_not_a_django_login_for_the_admin(staff_with_2fa, clock):
    client = APIClient()
    assert login(client, "staff@example.com").status_code == 200

    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_full_session_after_validate_opens_the_admin_for_staff(staff_with_2fa, clock):
    client = APIClient()
    login(client, "staff@example.com")
    assert validate(client, code_for(staff_with_2fa.otp_secret, clock)).status_code == 200

    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("method, path", ALL_SESSION_ENDPOINTS)
def test_no_session_is_401(api, db, method, path):
    assert_fail(call(api, method, path), 401)


@pytest.mark.parametrize("method, path", ALL_SESSION_ENDPOINTS)
def test_unknown_session_cookie_is_401(api, db, method, path):
    api.cookies[settings.SESSION_COOKIE_NAME] = "x" * 32

    assert_fail(call(api, method, path), 401)


def test_password_change_invalidates_a_pending_session(pending_client, user_with_2fa, clock):
    user_with_2fa.set_password("a brand new passphrase")
    user_with_2fa.save()

    assert_fail(validate(pending_client, code_for(user_with_2fa.otp_secret, clock)), 401)


def test_deactivation_invalidates_a_pending_session(pending_client, user_with_2fa, clock):
    user_with_2fa.is_active = False
    user_with_2fa.save()

    assert_fail(validate(pending_client, code_for(user_with_2fa.otp_secret, clock)), 401)


def test_password_change_ends_a_full_session(logged_in_client, user):
    user.set_password("a brand new passphrase")
    user.save()

    assert_fail(logged_in_client.get("/api/auth/me"), 401)


def test_pending_login_on_a_browser_with_another_full_session_drops_that_session(logged_in_client, clock, db):
    make_user("carol@example.com", "Carol", otp_enabled=True, otp_verified=True, otp_secret=totp.new_secret())

    assert login(logged_in_client, "carol@example.com").status_code == 200

    assert_fail(logged_in_client.get("/api/auth/me"), 403)
    assert_fail(logged_in_client.post("/api/auth/otp/disable", {}, format="json"), 403)


def test_validate_of_one_pending_session_does_not_complete_another(user_with_2fa, clock):
    first, second = APIClient(), APIClient()
    login(first, "ann@example.com", PASSWORD)
    login(second, "ann@example.com", PASSWORD)

    assert validate(first, code_for(user_with_2fa.otp_secret, clock)).status_code == 200

    assert_fail(second.get("/api/auth/me"), 403)
