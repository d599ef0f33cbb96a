"""The whole flow as the React app drives it, through the API."""

from otp_app.models import UserModel
from tests.helpers import PASSWORD, code_for, login


def test_register_login_enrol_validate_disable(api, clock, db):
    response = api.post(
        "/api/auth/register",
        {"email": "Ann@Example.com", "name": "Ann", "password": PASSWORD, "passwordConfirm": PASSWORD},
        format="json",
    )
    assert response.status_code == 201
    assert response.json() == {"status": "success", "message": "Registered successfully, please login"}

    response = login(api, "ann@example.com")
    assert response.status_code == 200
    user = response.json()["user"]
    assert user["otp_enabled"] is False

    response = api.post("/api/auth/otp/generate", {"user_id": user["id"], "email": user["email"]}, format="json")
    assert response.status_code == 200
    secret = response.json()["base32"]
    assert f"secret={secret}" in response.json()["otpauth_url"]

    response = api.post(
        "/api/auth/otp/verify", {"user_id": user["id"], "token": code_for(secret, clock)}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["otp_verified"] is True
    assert response.json()["user"]["otp_enabled"] is True

    clock.tick(30)
    response = login(api, "ann@example.com")
    assert response.json()["user"]["otp_enabled"] is True
    response = api.post(
        "/api/auth/otp/validate", {"user_id": user["id"], "token": code_for(secret, clock)}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"otp_valid": True}

    response = api.post("/api/auth/otp/disable", {"user_id": user["id"]}, format="json")
    assert response.status_code == 200
    assert response.json()["otp_disabled"] is True
    assert UserModel.objects.get().otp_secret == ""
