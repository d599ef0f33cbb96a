import pyotp
import pytest
import requests

from tests.helpers import PASSWORD, next_code

pytestmark = pytest.mark.e2e


def test_flow_over_http(live_server_url):
    api = live_server_url + "/api/auth/"
    session = requests.Session()
    assert (
        session.post(api + "register", json={"email": "e2e@example.com", "name": "E", "password": PASSWORD}).status_code
        == 201
    )
    user = session.post(api + "login", json={"email": "e2e@example.com", "password": PASSWORD}).json()["user"]
    secret = session.post(api + "otp/generate", json={"user_id": user["id"], "email": user["email"]}).json()["base32"]
    assert (
        session.post(api + "otp/verify", json={"user_id": user["id"], "token": pyotp.TOTP(secret).now()}).status_code
        == 200
    )
    assert session.post(api + "login", json={"email": "e2e@example.com", "password": PASSWORD}).status_code == 200
    assert session.post(api + "otp/validate", json={"token": next_code(secret)}).json() == {"otp_valid": True}
