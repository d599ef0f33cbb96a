"""Require 2FA over real HTTP, on a server started with TWOFA_REQUIRED=true and production
settings: the React app's journey still enrols, and nothing else opens before it does."""

import pyotp
import pytest

from tests.support.http_client import Account
from tests.support.server import serving

pytestmark = pytest.mark.e2e

ENROL_FIRST = {"status": "fail", "message": "Two-factor authentication is required: enrol first"}


@pytest.fixture(scope="module")
def required(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("required"), env={"TWOFA_REQUIRED": "true"}) as server:
        yield server.url


def test_the_react_apps_journey_enrols_and_only_then_opens_the_rest(required):
    person = Account(required)
    person.http.headers["Origin"] = "http://localhost:3000"  # as the React app's requests carry
    assert person.register().status_code == 201
    user = person.login().json()["user"]
    assert person.http.get(person.api + "me", timeout=60).status_code == 200

    refused = person.http.get(person.api + "passkeys", timeout=60)
    assert (refused.status_code, refused.json()) == (403, ENROL_FIRST)
    assert refused.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"  # the app can read why

    secret = person.post("otp/generate", {"user_id": user["id"], "email": user["email"]}).json()["base32"]
    verified = person.post("otp/verify", {"user_id": user["id"], "token": pyotp.TOTP(secret).now()})
    assert verified.status_code == 200, verified.text

    assert person.http.get(person.api + "passkeys", timeout=60).status_code == 200
