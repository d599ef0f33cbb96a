"""No answer of the API may be kept by a browser's or a proxy's cache: those that carry a secret
or codes least of all, and none other either (account data, errors)."""

import pytest

from tests.helpers import GENERATE, LOGIN, ME, RECOVERY_CODES, VERIFY, code_for


def assert_no_store(response) -> None:
    assert "no-store" in response["Cache-Control"], response.headers
    assert "private" in response["Cache-Control"]


def test_the_secret_from_generate_is_not_stored(logged_in_client):
    response = logged_in_client.post(GENERATE, {}, format="json")
    assert response.status_code == 200
    assert_no_store(response)


def test_the_recovery_codes_from_verify_are_not_stored(logged_in_client, clock):
    secret = logged_in_client.post(GENERATE, {}, format="json").json()["base32"]
    response = logged_in_client.post(VERIFY, {"token": code_for(secret, clock)}, format="json")
    assert "recovery_codes" in response.json()
    assert_no_store(response)


def test_new_recovery_codes_are_not_stored(full_2fa_client, user_with_2fa, clock):
    clock.tick(30)
    response = full_2fa_client.post(RECOVERY_CODES, {"token": code_for(user_with_2fa.otp_secret, clock)}, format="json")
    assert response.status_code == 200
    assert_no_store(response)


@pytest.mark.parametrize(
    "method, path, body",
    [("get", ME, None), ("post", LOGIN, {"email": "x@example.com", "password": "wrong"}), ("post", LOGIN, "{")],
    ids=["me", "wrong-password", "malformed-json"],
)
def test_other_answers_and_errors_are_not_stored_either(logged_in_client, method, path, body):
    if body == "{":
        response = logged_in_client.post(path, body, content_type="application/json")
    else:
        response = getattr(logged_in_client, method)(path, body, format="json")
    assert_no_store(response)
