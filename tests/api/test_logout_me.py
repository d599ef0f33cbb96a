"""POST /api/auth/logout and GET /api/auth/me."""

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.helpers import code_for


def test_me_returns_status_and_exactly_the_user(logged_in_client, user):
    response = logged_in_client.get("/api/auth/me")

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
        "session": {
            "authenticated_at": response.json()["session"]["authenticated_at"],
            "second_factor_at": None,
            "methods": ["password"],
            "reauthenticated_until": None,
            "enrolment_required": False,
        },
    }


def test_me_after_the_second_factor_shows_2fa_on_and_no_secret(full_2fa_client, user_with_2fa):
    response = full_2fa_client.get("/api/auth/me")

    assert response.status_code == 200
    assert response.json()["user"] == {
        "id": str(user_with_2fa.pk),
        "name": "Ann",
        "email": "ann@example.com",
        "otp_enabled": True,
        "otp_verified": True,
        "recovery_codes_left": 0,
        "passkeys": 0,
        "two_factor_enabled": True,
    }
    assert user_with_2fa.otp_secret not in response.content.decode()


@pytest.mark.parametrize("session", ["logged_in_client", "full_2fa_client"])
def test_logout_ends_a_full_session(request, session):
    client = request.getfixturevalue(session)

    response = client.post("/api/auth/logout", format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "success"
    assert client.get("/api/auth/me").status_code == 401


def test_logout_ends_a_pending_session(pending_client, user_with_2fa, clock):
    assert pending_client.post("/api/auth/logout", format="json").status_code == 200

    response = pending_client.post(
        "/api/auth/otp/validate", {"token": code_for(user_with_2fa.otp_secret, clock)}, format="json"
    )
    assert response.status_code == 401


def test_logout_kills_the_session_on_the_server_not_only_the_cookie(logged_in_client):
    stolen = logged_in_client.cookies[settings.SESSION_COOKIE_NAME].value

    logged_in_client.post("/api/auth/logout", format="json")

    replay = APIClient()
    replay.cookies[settings.SESSION_COOKIE_NAME] = stolen
    assert replay.get("/api/auth/me").status_code == 401


def test_logout_without_a_session_is_200(api, db):
    response = api.post("/api/auth/logout", format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "success"


@pytest.mark.parametrize(
    "method, path", [("post", "/api/auth/me"), ("get", "/api/auth/logout")], ids=["post-me", "get-logout"]
)
def test_wrong_method_on_me_or_logout_is_405(logged_in_client, method, path):
    response = getattr(logged_in_client, method)(path)

    assert response.status_code == 405
    assert response.json()["status"] == "fail"
    assert logged_in_client.get("/api/auth/me").status_code == 200
