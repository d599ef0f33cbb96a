"""The account always comes from the session; a `user_id` in a body may only name it.

user_id is optional on otp/generate, otp/verify, otp/validate and otp/disable; another account's
id is a 403, a malformed one a 400, null is the same as leaving it out.
"""

import uuid

import pytest
from rest_framework.test import APIClient

from otp_app import totp
from otp_app.models import UserModel
from tests.helpers import code_for, login, make_user, plain, snapshot

ENDPOINTS = ["generate", "verify", "validate", "disable"]


@pytest.fixture
def victim(db):
    """Another account with 2FA on, whose id an attacker knows."""
    return make_user("victim@example.com", "Vic", otp_enabled=True, otp_verified=True, otp_secret=totp.new_secret())


@pytest.fixture
def me(db, clock):
    """An account with 2FA on and a pending secret, with a full session in `me.client`."""
    account = make_user("me@example.com", "Me", otp_enabled=True, otp_verified=True, otp_secret=totp.new_secret())
    account.client = APIClient()
    login(account.client, account.email)
    response = account.client.post(
        "/api/auth/otp/validate", {"token": code_for(account.otp_secret, clock)}, format="json"
    )
    assert response.status_code == 200
    clock.tick(30)  # the step just used is spent; the tests below use the new one
    account.pending = account.client.post("/api/auth/otp/generate", {}, format="json").json()["base32"]
    return account


def body_for(endpoint: str, account, clock, user_id) -> dict:
    """A body that would succeed for the session's own `account`, apart from `user_id`."""
    body = {} if user_id is ... else {"user_id": user_id}
    if endpoint == "verify":
        body["token"] = code_for(account.pending, clock)
    elif endpoint == "validate":
        body["token"] = code_for(account.otp_secret, clock)
    elif endpoint == "generate":
        body["email"] = account.email
    return body


def call(account, endpoint, body):
    return account.client.post(f"/api/auth/otp/{endpoint}", body, format="json")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_user_id_may_be_left_out(me, clock, endpoint):
    response = call(me, endpoint, body_for(endpoint, me, clock, ...))
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_null_user_id_is_accepted(me, clock, endpoint):
    response = call(me, endpoint, body_for(endpoint, me, clock, None))
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("spelling", [str, lambda pk: str(pk).upper(), lambda pk: pk.hex])
def test_own_user_id_is_accepted(me, clock, endpoint, spelling):
    response = call(me, endpoint, body_for(endpoint, me, clock, spelling(me.pk)))
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_user_id_of_another_account_is_403(me, victim, clock, endpoint):
    mine, theirs = snapshot(me), snapshot(victim)
    response = call(me, endpoint, body_for(endpoint, me, clock, str(victim.pk)))
    assert response.status_code == 403
    body = response.json()
    assert body["status"] == "fail"
    assert isinstance(body["message"], str) and body["message"]
    assert "base32" not in body and "user" not in body
    # Neither account was touched.
    assert snapshot(me) == mine
    assert snapshot(victim) == theirs


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_user_id_of_an_unknown_account_is_403(me, clock, endpoint):
    mine = snapshot(me)
    response = call(me, endpoint, body_for(endpoint, me, clock, str(uuid.uuid4())))
    assert response.status_code == 403
    assert isinstance(response.json()["message"], str)
    assert snapshot(me) == mine


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    "user_id",
    [
        "not-a-uuid",
        "",
        "1234",
        "12345678-1234-1234-1234-12345678901",  # one digit short
        "12345678-1234-1234-1234-1234567890123",  # one digit long
        "g2345678-1234-1234-1234-123456789012",
        "' OR 1=1 --",
        "1234\x005678",
        ["12345678-1234-1234-1234-123456789012"],
        {"id": "12345678-1234-1234-1234-123456789012"},
        1.5,
        -1,
    ],
    ids=repr,
)
def test_malformed_user_id_is_400(me, clock, endpoint, user_id):
    mine = snapshot(me)
    response = call(me, endpoint, body_for(endpoint, me, clock, user_id))
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["status"] == "fail"
    assert isinstance(body["message"], str)
    assert "user_id" in body["errors"]
    assert snapshot(me) == mine


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("user_id", [12345, True], ids=repr)
def test_user_id_that_is_a_json_number_or_boolean_is_400(me, clock, endpoint, user_id):
    # A JSON number is not a UUID string: a wrong type, not "someone else's account".
    response = call(me, endpoint, body_for(endpoint, me, clock, user_id))
    assert response.status_code == 400, response.content
    assert "user_id" in response.json()["errors"]


def test_validate_of_a_pending_session_refuses_another_accounts_id(user_with_2fa, victim, clock):
    client = APIClient()
    login(client, user_with_2fa.email)
    # The attacker's code is right for the victim's secret: still, the victim is not the session's account.
    response = client.post(
        "/api/auth/otp/validate",
        {"user_id": str(victim.pk), "token": code_for(victim.otp_secret, clock)},
        format="json",
    )
    assert response.status_code == 403
    assert client.get("/api/auth/me").status_code == 403
    assert UserModel.objects.get(pk=victim.pk).last_accepted_step is None


def test_generate_acts_on_the_sessions_account(logged_in_client, user, victim):
    response = logged_in_client.post("/api/auth/otp/generate", {"email": victim.email}, format="json")
    assert response.status_code == 200
    assert plain(UserModel.objects.get(pk=user.pk).pending_secret) == response.json()["base32"]
    assert UserModel.objects.get(pk=victim.pk).pending_secret == ""


def test_verify_acts_on_the_sessions_account(logged_in_client, user, victim, clock):
    secret = logged_in_client.post("/api/auth/otp/generate", {}, format="json").json()["base32"]
    response = logged_in_client.post("/api/auth/otp/verify", {"token": code_for(secret, clock)}, format="json")
    assert response.status_code == 200
    assert response.json()["user"]["id"] == str(user.pk)
    assert plain(UserModel.objects.get(pk=user.pk).otp_secret) == secret
    assert UserModel.objects.get(pk=victim.pk).otp_secret == victim.otp_secret


def test_disable_acts_on_the_sessions_account(logged_in_client, user, victim):
    response = logged_in_client.post("/api/auth/otp/disable", {}, format="json")
    assert response.status_code == 200
    assert response.json()["user"]["id"] == str(user.pk)
    assert UserModel.objects.get(pk=victim.pk).otp_enabled is True


def test_a_victims_code_does_not_validate_the_attackers_login(user_with_2fa, victim, clock):
    client = APIClient()
    login(client, user_with_2fa.email)
    response = client.post("/api/auth/otp/validate", {"token": code_for(victim.otp_secret, clock)}, format="json")
    assert response.status_code == 400
    assert UserModel.objects.get(pk=victim.pk).last_accepted_step is None


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_user_id_without_a_session_does_not_act_on_that_account(api, victim, clock, endpoint):
    before = snapshot(victim)
    body = {"user_id": str(victim.pk), "token": code_for(victim.otp_secret, clock), "email": victim.email}
    response = api.post(f"/api/auth/otp/{endpoint}", body, format="json")
    assert response.status_code in (401, 403)
    assert "base32" not in response.json()
    assert snapshot(victim) == before
