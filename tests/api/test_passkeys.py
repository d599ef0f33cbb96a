"""Passkeys (WebAuthn): adding one, the second factor, a sign-in without a password, a fresh proof
(step-up), and their list, names and removal; every refusal a clear 4xx with nothing written.

The authenticator is software (tests/support/authenticator.py): real P-256 keys and signatures,
checked by the same library the API uses, with every field an attacker could change exposed.
"""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from otp_app import throttles
from otp_app.models import Passkey, RecoveryCode, SecurityEvent, UserModel
from tests.helpers import (
    ME,
    PASSKEY_AUTHENTICATION,
    PASSKEY_AUTHENTICATION_OPTIONS,
    PASSKEY_REGISTRATION,
    PASSKEY_REGISTRATION_OPTIONS,
    PASSKEYS,
    add_passkey,
    code_for,
    disable,
    enrol,
    login,
    prove_passkey,
    validate,
)
from tests.support.authenticator import SoftwareAuthenticator

NOT_ACCEPTED = {"status": "fail", "message": "Passkey was not accepted"}


@pytest.fixture
def authenticator():
    return SoftwareAuthenticator(origin="http://testserver", rp_id="localhost")


@pytest.fixture
def with_passkey(logged_in_client, user, authenticator, clock):
    """`user` with one passkey (its only second factor), added from a full session."""
    response = add_passkey(logged_in_client, authenticator, name="Laptop")
    assert response.status_code == 201, response.content
    return response.json()


def pending(email: str) -> APIClient:
    client = APIClient()
    response = login(client, email)
    assert response.status_code == 200, response.content
    assert response.json()["user"]["two_factor_enabled"] is True
    return client


def row(user) -> UserModel:
    return UserModel.objects.get(pk=user.pk)


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _creation_options() -> dict:
    """Creation options of a site that never heard of this credential."""
    return {
        "challenge": "AAAAAAAAAAAAAAAAAAAAAA",
        "rp": {"id": "localhost", "name": "x"},
        "user": {"id": "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg", "name": "x", "displayName": "x"},
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
    }


def events(kind: str) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(kind=kind))


# --- Adding a passkey ----------------------------------------------------------------------------


def test_creation_options_ask_for_a_discoverable_credential_with_a_random_user_handle(logged_in_client, user):
    response = logged_in_client.post(PASSKEY_REGISTRATION_OPTIONS)

    assert response.status_code == 200
    options = response.json()["publicKey"]
    assert options["rp"]["id"] == "localhost"
    assert len(b64url_decode(options["challenge"])) >= 16
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert {-7, -8, -257} <= {param["alg"] for param in options["pubKeyCredParams"]}
    assert options["attestation"] == "none"
    handle = b64url_decode(options["user"]["id"])
    assert len(handle) >= 16
    assert user.email.encode() not in handle and str(user.pk).encode() not in handle
    assert options["user"]["name"] == user.email
    assert options["excludeCredentials"] == []


def test_the_first_passkey_switches_2fa_on_and_issues_recovery_codes(logged_in_client, user, authenticator):
    response = add_passkey(logged_in_client, authenticator, name="Laptop")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "success"
    assert set(body["passkey"]) == {"id", "name", "created_at", "last_used_at", "backed_up"}
    assert body["passkey"]["name"] == "Laptop"
    assert body["passkey"]["last_used_at"] is None
    assert body["user"]["passkeys"] == 1
    assert body["user"]["two_factor_enabled"] is True
    assert body["user"]["otp_enabled"] is False  # otp_enabled keeps meaning TOTP
    assert len(body["recovery_codes"]) == 10
    assert RecoveryCode.objects.filter(user=user).count() == 10
    assert [event.detail["passkey"] for event in events("passkey_added")] == [body["passkey"]["id"]]


def test_a_second_passkey_issues_no_codes_and_the_first_is_excluded(logged_in_client, with_passkey, authenticator):
    options = logged_in_client.post(PASSKEY_REGISTRATION_OPTIONS).json()["publicKey"]
    assert [item["id"] for item in options["excludeCredentials"]] == [authenticator.credential_id()]

    response = add_passkey(logged_in_client, SoftwareAuthenticator(origin="http://testserver"), name="Phone")

    assert response.status_code == 201, response.content
    assert "recovery_codes" not in response.json()
    assert response.json()["user"]["passkeys"] == 2


def test_an_unnamed_passkey_gets_a_name(logged_in_client, authenticator):
    response = add_passkey(logged_in_client, authenticator)
    assert response.json()["passkey"]["name"] == "Passkey 1"


def test_a_credential_registered_twice_is_a_409_and_nothing_changes(
    logged_in_client, user, with_passkey, authenticator
):
    options = logged_in_client.post(PASSKEY_REGISTRATION_OPTIONS).json()["publicKey"]
    credential = authenticator.register(options, credential=authenticator.credential_id())

    response = logged_in_client.post(PASSKEY_REGISTRATION, {"credential": credential}, format="json")

    assert response.status_code == 409
    assert response.json() == {"status": "fail", "message": "This passkey is already registered"}
    assert Passkey.objects.count() == 1 and row(user).passkey_count == 1


def test_another_accounts_credential_id_is_a_409_too(logged_in_client, with_passkey, authenticator, other_user):
    bob = APIClient()
    login(bob, other_user.email)
    options = bob.post(PASSKEY_REGISTRATION_OPTIONS).json()["publicKey"]
    credential = authenticator.register(options, credential=authenticator.credential_id())

    assert bob.post(PASSKEY_REGISTRATION, {"credential": credential}, format="json").status_code == 409
    assert row(other_user).passkey_count == 0


@pytest.mark.parametrize(
    "attack",
    [
        {"origin": "https://evil.example"},
        {"rp_id": "evil.example"},
        {"challenge": b"another challenge of 32 bytes..."},
        {"type": "webauthn.get"},
        {"user_present": False},
        {"top_origin": "https://evil.example"},
    ],
    ids=["wrong origin", "wrong RP ID", "other challenge", "wrong type", "no user presence", "framed by a site"],
)
def test_a_refused_registration_is_a_400_and_stores_nothing(logged_in_client, user, authenticator, attack):
    response = add_passkey(logged_in_client, authenticator, **attack)

    assert response.status_code == 400
    assert response.json() == NOT_ACCEPTED
    assert not Passkey.objects.exists()
    assert row(user).passkey_count == 0 and not RecoveryCode.objects.exists()


def test_a_registration_challenge_is_used_once(logged_in_client, authenticator):
    options = logged_in_client.post(PASSKEY_REGISTRATION_OPTIONS).json()["publicKey"]
    refused = authenticator.register(options, origin="https://evil.example")
    assert logged_in_client.post(PASSKEY_REGISTRATION, {"credential": refused}, format="json").status_code == 400

    right = authenticator.register(options)  # the same challenge, answered right: too late
    response = logged_in_client.post(PASSKEY_REGISTRATION, {"credential": right}, format="json")

    assert response.status_code == 400
    assert not Passkey.objects.exists()


def test_a_registration_challenge_expires(logged_in_client, authenticator, clock, settings):
    options = logged_in_client.post(PASSKEY_REGISTRATION_OPTIONS).json()["publicKey"]
    clock.tick(settings.TWOFA_WEBAUTHN_TIMEOUT + 1)

    response = logged_in_client.post(
        PASSKEY_REGISTRATION, {"credential": authenticator.register(options)}, format="json"
    )

    assert response.status_code == 400
    assert not Passkey.objects.exists()


def test_a_challenge_of_another_session_is_refused(logged_in_client, user, authenticator):
    options = logged_in_client.post(PASSKEY_REGISTRATION_OPTIONS).json()["publicKey"]
    other_browser = APIClient()
    login(other_browser, user.email)

    response = other_browser.post(PASSKEY_REGISTRATION, {"credential": authenticator.register(options)}, format="json")

    assert response.status_code == 400
    assert not Passkey.objects.exists()


def test_registration_needs_a_full_session(api, pending_client, db):
    assert api.post(PASSKEY_REGISTRATION_OPTIONS).status_code == 401
    assert pending_client.post(PASSKEY_REGISTRATION_OPTIONS).status_code == 403


def test_adding_a_passkey_with_totp_on_needs_a_recent_proof(
    no_idle_limit, full_2fa_client, user_with_2fa, clock, settings
):
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)

    response = full_2fa_client.post(PASSKEY_REGISTRATION_OPTIONS)

    assert response.status_code == 403
    assert response.json()["message"].startswith("Confirm with a code: ")
    # A fresh code proves it again; the passkey can then be added.
    assert validate(full_2fa_client, code_for(user_with_2fa.otp_secret, clock)).status_code == 200
    response = add_passkey(full_2fa_client, SoftwareAuthenticator(origin="http://testserver"))
    assert response.status_code == 201, response.content
    assert "recovery_codes" not in response.json()  # 2FA was on already


# --- Bad input -------------------------------------------------------------------------------------


def _registration_with(client, authenticator, change) -> int:
    options = client.post(PASSKEY_REGISTRATION_OPTIONS).json()["publicKey"]
    credential = authenticator.register(options)
    change(credential)
    response = client.post(PASSKEY_REGISTRATION, {"credential": credential}, format="json")
    assert response["Content-Type"] == "application/json"
    return response.status_code


def _truncate(field):
    def change(credential):
        credential["response"][field] = credential["response"][field][:20]

    return change


def _garble(field):
    def change(credential):
        credential["response"][field] = "!!not base64url!!"

    return change


def _set(key, value):
    def change(credential):
        credential[key] = value

    return change


@pytest.mark.parametrize(
    "change",
    [
        _truncate("attestationObject"),
        _truncate("clientDataJSON"),
        _garble("attestationObject"),
        _garble("clientDataJSON"),
        _set("response", "not an object"),
        _set("response", {}),
        _set("id", "different"),
        _set("rawId", 42),
        _set("type", "password"),
        _set("id", "A" * 1400),
    ],
)
def test_malformed_registration_answers_are_4xx_never_500(logged_in_client, authenticator, change):
    status = _registration_with(logged_in_client, authenticator, change)

    assert status == 400
    assert not Passkey.objects.exists()


def test_an_id_over_1023_bytes_is_refused(logged_in_client, authenticator):
    response = add_passkey(
        logged_in_client, SoftwareAuthenticator(origin="http://testserver", credential_id_length=1024)
    )
    assert response.status_code == 400


@pytest.mark.parametrize("attested_id_length", [32, 2000])
def test_the_id_sent_must_be_the_id_the_authenticator_attested(logged_in_client, attested_id_length):
    # The id kept is the one in the signed authenticator data; an `id` and `rawId` that name
    # another credential (short, so within the 1,023 bytes) must not smuggle it in.
    authenticator = SoftwareAuthenticator(origin="http://testserver", credential_id_length=attested_id_length)
    other = base64.urlsafe_b64encode(b"\x01" * 32).decode().rstrip("=")

    status = _registration_with(
        logged_in_client, authenticator, lambda credential: credential.update(id=other, rawId=other)
    )

    assert status == 400
    assert not Passkey.objects.exists()
    assert not RecoveryCode.objects.exists()


def test_transports_webauthn_does_not_name_are_left_out_whatever_their_type(logged_in_client, authenticator):
    def change(credential):
        credential["response"]["transports"] = [["internal"], {"usb": 1}, 7, None, "carrier-pigeon", "hybrid"]

    assert _registration_with(logged_in_client, authenticator, change) == 201
    assert Passkey.objects.get().transports == ["hybrid"]


@pytest.mark.parametrize("credential", [None, "text", 42, [], {"id": None}])
def test_a_credential_that_is_no_object_is_a_validation_error(logged_in_client, credential):
    response = logged_in_client.post(PASSKEY_REGISTRATION, {"credential": credential}, format="json")
    assert response.status_code == 400
    assert isinstance(response.json()["message"], str)


def test_cbor_that_is_no_attestation_is_refused(logged_in_client, authenticator):
    def change(credential):
        credential["response"]["attestationObject"] = base64.urlsafe_b64encode(b"\xa1\x01\x02").decode().rstrip("=")

    assert _registration_with(logged_in_client, authenticator, change) == 400


# --- The second factor -----------------------------------------------------------------------------


def test_with_a_passkey_login_is_pending_until_the_prove_passkeys(with_passkey, user, authenticator):
    client = pending(user.email)
    assert client.get(ME).status_code == 403
    options = client.post(PASSKEY_AUTHENTICATION_OPTIONS).json()["publicKey"]
    assert [item["id"] for item in options["allowCredentials"]] == [authenticator.credential_id()]
    assert options["userVerification"] == "preferred"
    key_before = client.cookies["sessionid"].value

    response = client.post(PASSKEY_AUTHENTICATION, {"credential": authenticator.authenticate(options)}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "success"
    assert response.json()["user"]["email"] == user.email
    assert client.cookies["sessionid"].value != key_before  # a new key, as after otp/validate
    assert client.get(ME).status_code == 200
    passkey = Passkey.objects.get()
    assert passkey.last_used_at is not None and passkey.sign_count == 1
    assert [event.detail["purpose"] for event in events("passkey_used")] == ["second_factor"]


def test_a_recovery_code_stands_in_for_a_lost_passkey(with_passkey, user):
    client = pending(user.email)

    assert validate(client, with_passkey["recovery_codes"][0]).status_code == 200
    assert client.get(ME).status_code == 200


def test_a_totp_code_is_no_proof_on_an_account_with_passkeys_only(with_passkey, user):
    client = pending(user.email)
    assert validate(client, "123456").status_code == 404
    assert client.get(ME).status_code == 403


def test_a_pending_session_cannot_answer_with_another_accounts_passkey(with_passkey, user, other_user, clock):
    bob_key = SoftwareAuthenticator(origin="http://testserver")
    bob = APIClient()
    login(bob, other_user.email)
    assert add_passkey(bob, bob_key).status_code == 201
    client = pending(user.email)
    options = client.post(PASSKEY_AUTHENTICATION_OPTIONS).json()["publicKey"]

    response = client.post(
        PASSKEY_AUTHENTICATION,
        {"credential": bob_key.authenticate(options, credential=bob_key.credential_id())},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == NOT_ACCEPTED
    assert row(user).failed_attempts == 1  # counted against the account the session waits for
    assert row(other_user).failed_attempts == 0
    assert client.get(ME).status_code == 403


@pytest.mark.parametrize(
    "attack",
    [
        {"origin": "https://evil.example"},
        {"rp_id": "evil.example"},
        {"challenge": b"another challenge of 32 bytes..."},
        {"user_present": False},
        {"type": "webauthn.create"},
        {"top_origin": "https://evil.example"},
    ],
    ids=["phishing origin", "wrong RP ID", "other challenge", "no user presence", "wrong type", "framed by a site"],
)
def test_a_refused_answer_counts_as_a_wrong_code(with_passkey, user, authenticator, attack):
    client = pending(user.email)

    response = prove_passkey(client, authenticator, **attack)

    assert response.status_code == 400
    assert response.json() == NOT_ACCEPTED
    assert row(user).failed_attempts == 1
    assert client.get(ME).status_code == 403
    assert len(events("passkey_refused")) == 1


def test_a_host_header_does_not_make_a_phishing_page_the_apis_own_origin(with_passkey, user, authenticator, settings):
    # The API answers any subdomain of example.com; the passkeys belong to example.com, so a page
    # on any of its subdomains may ask for an answer. A phisher relays one signed on their page
    # and names that page's host: only configured origins and hosts named exactly may pass.
    settings.TWOFA_WEBAUTHN_RP_ID = "example.com"
    settings.ALLOWED_HOSTS = [".example.com", "testserver"]
    settings.TWOFA_WEBAUTHN_ORIGINS = ["https://app.example.com"]
    authenticator.credential().rp_id = "example.com"
    for origin, status in (("https://phish.example.com", 400), ("https://app.example.com", 200)):
        client = pending(user.email)
        options = client.post(PASSKEY_AUTHENTICATION_OPTIONS).json()["publicKey"]
        answer = authenticator.authenticate(options, origin=origin)

        response = client.post(
            PASSKEY_AUTHENTICATION, {"credential": answer}, format="json", HTTP_HOST="phish.example.com", secure=True
        )

        assert response.status_code == status, (origin, response.content)


def test_a_signature_by_another_key_is_refused(with_passkey, user, authenticator):
    forger = authenticator.clone()
    forger.credential().private_key = ec.generate_private_key(ec.SECP256R1())  # same id, another key
    client = pending(user.email)

    response = prove_passkey(client, forger)

    assert response.status_code == 400
    assert row(user).failed_attempts == 1


def test_refused_answers_lock_the_account_like_wrong_codes(with_passkey, user, authenticator, settings):
    client = pending(user.email)
    for _ in range(settings.TWOFA_LOCKOUT_THRESHOLD):
        assert prove_passkey(client, authenticator, origin="https://evil.example").status_code == 400

    response = prove_passkey(client, authenticator)  # right, but locked: not even looked at

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert client.get(ME).status_code == 403
    assert events("locked_out")


def test_wrong_codes_lock_passkeys_too(with_passkey, user, authenticator, clock, settings):
    client = pending(user.email)
    for code in with_passkey["recovery_codes"][: settings.TWOFA_LOCKOUT_THRESHOLD]:
        validate(client, code[::-1])  # recovery-code shaped, wrong

    assert prove_passkey(client, authenticator).status_code == 429


def test_an_answer_replayed_is_refused(with_passkey, user, authenticator):
    client = pending(user.email)
    options = client.post(PASSKEY_AUTHENTICATION_OPTIONS).json()["publicKey"]
    answer = authenticator.authenticate(options)
    assert client.post(PASSKEY_AUTHENTICATION, {"credential": answer}, format="json").status_code == 200

    attacker = pending(user.email)  # a second login, replaying the captured answer
    attacker.post(PASSKEY_AUTHENTICATION_OPTIONS)
    response = attacker.post(PASSKEY_AUTHENTICATION, {"credential": answer}, format="json")

    assert response.status_code == 400
    assert attacker.get(ME).status_code == 403


def test_an_authentication_challenge_expires(with_passkey, user, authenticator, clock, settings):
    client = pending(user.email)
    options = client.post(PASSKEY_AUTHENTICATION_OPTIONS).json()["publicKey"]
    clock.tick(settings.TWOFA_WEBAUTHN_TIMEOUT + 1)

    response = client.post(PASSKEY_AUTHENTICATION, {"credential": authenticator.authenticate(options)}, format="json")

    assert response.status_code == 400


def test_a_counter_that_does_not_grow_is_refused_as_a_cloned_key(with_passkey, user, authenticator):
    clone = authenticator.clone()
    assert prove_passkey(pending(user.email), authenticator).status_code == 200  # counter 1

    response = prove_passkey(pending(user.email), clone)  # the copy also signs with counter 1

    assert response.status_code == 400
    assert response.json() == NOT_ACCEPTED
    refused = events("passkey_refused")
    assert [event.detail["possibly_cloned"] for event in refused] == [True]


def test_an_answer_without_a_counter_is_accepted_and_keeps_the_highest_counter_seen(with_passkey, user, authenticator):
    clone = authenticator.clone()
    for _ in range(3):
        assert prove_passkey(pending(user.email), authenticator).status_code == 200  # counters 1, 2, 3
    assert prove_passkey(pending(user.email), authenticator, sign_count=0).status_code == 200
    assert Passkey.objects.get().sign_count == 3

    assert prove_passkey(pending(user.email), clone, sign_count=2).status_code == 400  # a copy, behind
    assert [event.detail["possibly_cloned"] for event in events("passkey_refused")] == [True]


def test_authenticators_without_a_counter_keep_working(logged_in_client, user):
    no_counter = SoftwareAuthenticator(origin="http://testserver", counter=False)
    assert add_passkey(logged_in_client, no_counter).status_code == 201
    for _ in range(2):
        assert prove_passkey(pending(user.email), no_counter).status_code == 200


# --- Sign-in without a password --------------------------------------------------------------------


def test_a_passkey_signs_in_without_a_password(with_passkey, user, authenticator, db):
    browser = APIClient()
    options = browser.post(PASSKEY_AUTHENTICATION_OPTIONS).json()["publicKey"]
    assert options["allowCredentials"] == []
    assert options["userVerification"] == "required"

    response = browser.post(PASSKEY_AUTHENTICATION, {"credential": authenticator.authenticate(options)}, format="json")

    assert response.status_code == 200, response.content
    assert browser.get(ME).json()["user"]["id"] == str(user.pk)
    assert {"second_factor": "passkey"} in [event.detail for event in events("login_succeeded")]


@pytest.mark.parametrize("sign_in", [False, True], ids=["second factor", "sign-in"])
def test_a_passkey_request_reads_two_rows_and_writes_four(with_passkey, user, authenticator, db, sign_in):
    """The session and the passkey read; the passkey's use, last_login, the events (a sign-in's
    two with one INSERT) and the session's new key written: one statement each."""
    browser = APIClient() if sign_in else pending(user.email)
    options = browser.post(PASSKEY_AUTHENTICATION_OPTIONS).json()["publicKey"]
    credential = authenticator.authenticate(options)

    with CaptureQueriesContext(connection) as queries:
        response = browser.post(PASSKEY_AUTHENTICATION, {"credential": credential}, format="json")

    assert response.status_code == 200, response.content
    verbs = sorted(verb for query in queries if (verb := query["sql"].split()[0]) not in ("SAVEPOINT", "RELEASE"))
    assert verbs == ["INSERT", "SELECT", "SELECT", "UPDATE", "UPDATE", "UPDATE"]
    kinds = ["login_succeeded", "passkey_used"] if sign_in else ["passkey_used"]
    assert [event.kind for event in SecurityEvent.objects.order_by("pk")][-len(kinds) :] == kinds


def test_a_sign_in_needs_user_verification(with_passkey, user, authenticator, db):
    response = prove_passkey(APIClient(), authenticator, user_verified=False)
    assert response.status_code == 400
    assert row(user).failed_attempts == 1


def test_a_sign_in_needs_the_user_handle_of_the_credentials_account(with_passkey, user, authenticator, db):
    response = prove_passkey(APIClient(), authenticator, user_handle=b"someone else's handle")
    assert response.status_code == 400


def test_an_unknown_credential_gets_the_same_answer(with_passkey, db):
    stranger = SoftwareAuthenticator(origin="http://testserver")
    stranger.register(_creation_options())

    response = prove_passkey(APIClient(), stranger)

    assert response.status_code == 400
    assert response.json() == NOT_ACCEPTED


@pytest.mark.parametrize(
    "credential",
    [
        {},
        {"id": "", "rawId": ""},
        {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": "x"},
        {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {"clientDataJSON": "%%%"}},
        {"id": "AAAA", "rawId": "AAAB", "type": "public-key", "response": {}},
    ],
)
def test_malformed_assertions_are_400(with_passkey, credential, db):
    browser = APIClient()
    browser.post(PASSKEY_AUTHENTICATION_OPTIONS)

    response = browser.post(PASSKEY_AUTHENTICATION, {"credential": credential}, format="json")

    assert response.status_code == 400
    assert response.json() == NOT_ACCEPTED


def test_a_truncated_assertion_is_400(with_passkey, user, authenticator):
    client = pending(user.email)
    options = client.post(PASSKEY_AUTHENTICATION_OPTIONS).json()["publicKey"]
    answer = authenticator.authenticate(options)
    answer["response"]["authenticatorData"] = answer["response"]["authenticatorData"][:30]

    response = client.post(PASSKEY_AUTHENTICATION, {"credential": answer}, format="json")

    assert response.status_code == 400
    assert client.get(ME).status_code == 403


def test_options_without_a_passkey_to_answer_are_404(pending_client):
    response = pending_client.post(PASSKEY_AUTHENTICATION_OPTIONS)
    assert response.status_code == 404
    assert response.json() == {"status": "fail", "message": "No passkey is registered for this account"}


def test_passkey_sign_ins_are_limited_per_address(db, settings, monkeypatch):
    monkeypatch.setattr(throttles.PasskeySignInThrottle, "THROTTLE_RATES", {"passkey-sign-in": "2/minute"})
    answers = [APIClient().post(PASSKEY_AUTHENTICATION_OPTIONS).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    other_address = APIClient(REMOTE_ADDR="203.0.113.9")
    assert other_address.post(PASSKEY_AUTHENTICATION_OPTIONS).status_code == 200


def test_answers_without_a_challenge_count_towards_that_limit_answers_to_one_do_not(
    with_passkey, user, authenticator, monkeypatch
):
    # An answer with no challenge behind it can never pass, yet each would be recorded: without a
    # limit, anyone could fill the audit table. An answer to a challenge was counted with it.
    monkeypatch.setattr(throttles.PasskeySignInThrottle, "THROTTLE_RATES", {"passkey-sign-in": "2/minute"})
    browser = APIClient()
    options = browser.post(PASSKEY_AUTHENTICATION_OPTIONS).json()["publicKey"]
    answer = {"credential": authenticator.authenticate(options)}
    unasked = [APIClient().post(PASSKEY_AUTHENTICATION, answer, format="json").status_code for _ in range(3)]
    assert unasked == [400, 429, 429]  # the options counted once, the first answer once
    assert len(events("passkey_refused")) == 1
    assert APIClient().post(PASSKEY_AUTHENTICATION_OPTIONS).status_code == 429

    assert browser.post(PASSKEY_AUTHENTICATION, answer, format="json").status_code == 200


# --- Step-up, list, rename, remove -----------------------------------------------------------------


def test_removing_a_passkey_after_the_window_needs_a_fresh_proof(
    no_idle_limit, logged_in_client, with_passkey, user, authenticator, clock, settings
):
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 1)
    passkey_id = with_passkey["passkey"]["id"]
    response = logged_in_client.delete(f"{PASSKEYS}/{passkey_id}", {}, format="json")
    assert response.status_code == 403
    assert response.json()["message"].startswith("Confirm with a code: ")

    assert prove_passkey(logged_in_client, authenticator).status_code == 200  # step-up
    response = logged_in_client.delete(f"{PASSKEYS}/{passkey_id}", {}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["user"]["two_factor_enabled"] is False


def test_removing_the_last_second_factor_turns_2fa_off(logged_in_client, with_passkey, user):
    response = logged_in_client.delete(f"{PASSKEYS}/{with_passkey['passkey']['id']}", {}, format="json")

    assert response.status_code == 200
    assert response.json() == {"status": "success", "user": response.json()["user"]}
    assert response.json()["user"]["passkeys"] == 0
    assert not RecoveryCode.objects.filter(user=user).exists() and row(user).recovery_codes_left == 0
    assert login(APIClient(), user.email).json()["user"]["two_factor_enabled"] is False
    assert events("passkey_removed") and events("otp_disabled")


def test_otp_disable_with_passkeys_left_keeps_2fa_on(logged_in_client, with_passkey, user, clock):
    enrol(logged_in_client, clock)  # TOTP beside the passkey: no new recovery codes

    response = disable(logged_in_client)

    assert response.status_code == 200
    assert response.json()["user"]["otp_enabled"] is False
    assert response.json()["user"]["two_factor_enabled"] is True
    assert row(user).recovery_codes_left == 10
    assert pending(user.email).get(ME).status_code == 403


def test_enrolling_totp_beside_a_passkey_issues_no_new_codes(logged_in_client, with_passkey, clock):
    _, body = enrol(logged_in_client, clock)
    assert "recovery_codes" not in body
    assert body["user"]["otp_enabled"] is True


def test_the_list_shows_the_accounts_passkeys_only(logged_in_client, with_passkey, other_user):
    response = logged_in_client.get(PASSKEYS)

    assert response.status_code == 200
    assert response.json() == {"status": "success", "passkeys": [with_passkey["passkey"]]}
    bob = APIClient()
    login(bob, other_user.email)
    assert bob.get(PASSKEYS).json()["passkeys"] == []


def test_rename(logged_in_client, with_passkey):
    path = f"{PASSKEYS}/{with_passkey['passkey']['id']}"

    response = logged_in_client.patch(path, {"name": "  Work laptop "}, format="json")

    assert response.status_code == 200
    assert response.json()["passkey"]["name"] == "Work laptop"
    assert logged_in_client.patch(path, {"name": ""}, format="json").status_code == 400
    assert logged_in_client.patch(path, {"name": "x" * 65}, format="json").status_code == 400


def test_another_accounts_passkey_is_404_to_rename_and_remove(with_passkey, other_user):
    bob = APIClient()
    login(bob, other_user.email)
    path = f"{PASSKEYS}/{with_passkey['passkey']['id']}"

    assert bob.patch(path, {"name": "mine"}, format="json").status_code == 404
    assert bob.delete(path, {}, format="json").status_code == 404
    assert Passkey.objects.get().name == "Laptop"


def test_a_malformed_passkey_id_is_a_json_404(logged_in_client):
    response = logged_in_client.patch(f"{PASSKEYS}/not-a-uuid", {"name": "x"}, format="json")
    assert response.status_code == 404
    assert response.json()["status"] == "fail"


# --- The account, the admin and secrets ------------------------------------------------------------


def test_no_answer_holds_the_public_key_or_the_credential_id(logged_in_client, with_passkey, authenticator):
    text = json.dumps(with_passkey) + logged_in_client.get(PASSKEYS).content.decode()
    assert authenticator.credential_id() not in text
    assert "public_key" not in text


def test_deleting_an_account_deletes_its_passkeys(with_passkey, user):
    row(user).delete()
    assert not Passkey.objects.exists()


def test_admin_reset_removes_passkeys(with_passkey, user, superuser, client):
    client.force_login(superuser)
    response = client.post(
        "/admin/otp_app/usermodel/", {"action": "reset_two_factor", "_selected_action": [str(user.pk)]}
    )

    assert response.status_code == 302
    assert not Passkey.objects.exists()
    assert row(user).passkey_count == 0 and not row(user).two_factor_enabled


def test_the_admin_lists_a_users_passkeys(with_passkey, user, superuser, client):
    client.force_login(superuser)
    page = client.get(f"/admin/otp_app/usermodel/{user.pk}/change/").content.decode()
    assert "Laptop" in page and "Passkeys" in page
