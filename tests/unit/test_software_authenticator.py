"""tests/support/authenticator.py on its own: what it sends is what py_webauthn accepts, and each
forged field makes py_webauthn refuse, so API tests can trust both its good and its bad answers."""

import json

import cbor2
import pytest
from cryptography.hazmat.primitives.serialization import load_der_public_key
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, parse_authenticator_data
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidBackupFlags,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import CredentialDeviceType, PublicKeyCredentialDescriptor

from tests.support.authenticator import AuthenticatorError, Credential, SoftwareAuthenticator

RP_ID = "localhost"
ORIGIN = "http://testserver"
USER_ID = b"user-1"
CHALLENGE = b"registration challenge"
SIGN_IN_CHALLENGE = b"sign-in challenge"


def creation_options(user_id=USER_ID, exclude=()):
    options = generate_registration_options(
        rp_id=RP_ID,
        rp_name="Test",
        user_name="alice",
        user_id=user_id,
        challenge=CHALLENGE,
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(i)) for i in exclude],
    )
    return json.loads(options_to_json(options))


def request_options(allow=()):
    options = generate_authentication_options(
        rp_id=RP_ID,
        challenge=SIGN_IN_CHALLENGE,
        allow_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(i)) for i in allow],
    )
    return json.loads(options_to_json(options))


def verify_registration(credential, require_user_verification=False):
    return verify_registration_response(
        credential=credential,
        expected_challenge=CHALLENGE,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        require_user_verification=require_user_verification,
    )


def verify_sign_in(assertion, public_key, sign_count, require_user_verification=False):
    return verify_authentication_response(
        credential=assertion,
        expected_challenge=SIGN_IN_CHALLENGE,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        credential_public_key=public_key,
        credential_current_sign_count=sign_count,
        require_user_verification=require_user_verification,
    )


@pytest.fixture
def auth():
    return SoftwareAuthenticator()


@pytest.fixture
def registered(auth):
    """The authenticator with one passkey, and what the server stored at registration."""
    return auth, verify_registration(auth.register(creation_options()))


def test_registration_verifies_as_a_none_attestation_of_an_es256_key(auth):
    credential = auth.register(creation_options())
    verified = verify_registration(credential, require_user_verification=True)
    assert verified.credential_id == base64url_to_bytes(credential["id"]) == auth.credentials[0].id
    assert len(verified.credential_id) == 32
    assert verified.fmt == "none"
    assert verified.aaguid == "00000000-0000-0000-0000-000000000000"
    assert verified.sign_count == 0
    assert verified.user_verified is True
    assert verified.credential_device_type == CredentialDeviceType.SINGLE_DEVICE
    assert verified.credential_backed_up is False


def test_registration_response_is_what_credential_to_json_gives(auth):
    credential = auth.register(creation_options())
    assert credential["type"] == "public-key"
    assert credential["rawId"] == credential["id"] == auth.credential_id()
    assert credential["authenticatorAttachment"] == "platform"
    assert credential["clientExtensionResults"] == {}
    response = credential["response"]
    assert response["transports"] == ["internal"]
    assert response["publicKeyAlgorithm"] == -7
    assert not any("=" in value for value in response.values() if isinstance(value, str))
    client_data = json.loads(base64url_to_bytes(response["clientDataJSON"]))
    assert client_data == {
        "type": "webauthn.create",
        "challenge": creation_options()["challenge"],
        "origin": ORIGIN,
        "crossOrigin": False,
    }
    attestation = cbor2.loads(base64url_to_bytes(response["attestationObject"]))
    assert attestation["fmt"] == "none" and attestation["attStmt"] == {}
    assert attestation["authData"] == base64url_to_bytes(response["authenticatorData"])
    # publicKey (SPKI) is the same key as the COSE_Key in the attested credential data.
    spki = load_der_public_key(base64url_to_bytes(response["publicKey"])).public_numbers()
    cose = parse_authenticator_data(attestation["authData"]).attested_credential_data.credential_public_key
    assert cbor2.loads(cose) == {1: 2, 3: -7, -1: 1, -2: spki.x.to_bytes(32, "big"), -3: spki.y.to_bytes(32, "big")}


def test_sign_in_verifies_and_the_counter_grows_by_one(registered):
    auth, stored = registered
    sign_count = stored.sign_count
    for expected in (1, 2):
        assertion = auth.authenticate(request_options(allow=[auth.credential_id()]))
        verified = verify_sign_in(assertion, stored.credential_public_key, sign_count, require_user_verification=True)
        assert verified.new_sign_count == expected
        assert base64url_to_bytes(assertion["response"]["userHandle"]) == USER_ID
        sign_count = verified.new_sign_count


def test_counter_false_stays_at_zero_and_still_verifies():
    auth = SoftwareAuthenticator(counter=False)
    stored = verify_registration(auth.register(creation_options()))
    for _ in range(2):
        assertion = auth.authenticate(request_options())
        assert verify_sign_in(assertion, stored.credential_public_key, 0).new_sign_count == 0


def test_discoverable_sign_in_uses_the_newest_passkey_and_allow_credentials_picks_one(auth):
    first = auth.register(creation_options(user_id=b"first"))
    second = auth.register(creation_options(user_id=b"second"))
    assert auth.authenticate(request_options())["id"] == second["id"]
    chosen = auth.authenticate(request_options(allow=[first["id"]]))
    assert chosen["id"] == first["id"]
    assert base64url_to_bytes(chosen["response"]["userHandle"]) == b"first"
    with pytest.raises(AuthenticatorError, match="NotAllowedError"):
        auth.authenticate(request_options(allow=["AAAA"]))


def test_register_refuses_an_excluded_credential_unless_forced(registered):
    auth, _ = registered
    options = creation_options(exclude=[auth.credential_id()])
    with pytest.raises(AuthenticatorError, match="InvalidStateError"):
        auth.register(options)
    again = auth.register(options, credential=auth.credential_id())
    assert verify_registration(again).credential_id == auth.credentials[0].id
    assert len(auth.credentials) == 1


def test_credential_id_length_and_user_handle_overrides():
    auth = SoftwareAuthenticator(credential_id_length=16)
    assert len(verify_registration(auth.register(creation_options())).credential_id) == 16
    assert len(auth.credentials[0].id) == 16
    long_id = auth.register(creation_options(), credential_id_length=200)
    assert len(base64url_to_bytes(long_id["id"])) == 200
    assertion = auth.authenticate(request_options(), user_handle=b"someone else")
    assert base64url_to_bytes(assertion["response"]["userHandle"]) == b"someone else"
    assert "userHandle" not in auth.authenticate(request_options(), user_handle=None)["response"]


def test_backup_flags_reach_py_webauthn(auth):
    synced = verify_registration(auth.register(creation_options(), backup_eligible=True, backed_up=True))
    assert synced.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    assert synced.credential_backed_up is True
    # The credential keeps its flags at sign-in.
    stored = auth.credential()
    assert isinstance(stored, Credential) and stored.backup_eligible and stored.backed_up
    verified = verify_sign_in(auth.authenticate(request_options()), synced.credential_public_key, 0)
    assert verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    # Backed up but not eligible cannot happen.
    with pytest.raises(InvalidBackupFlags):
        verify_registration(auth.register(creation_options(), backup_eligible=False, backed_up=True))


# Each forged field, and the words of py_webauthn's refusal (so it is refused for that reason).
FORGERIES = [
    pytest.param({"origin": "http://evil.example"}, "origin", id="origin"),
    pytest.param({"rp_id": "evil.example"}, "RP ID hash", id="rp_id"),
    pytest.param({"challenge": b"another challenge"}, "challenge", id="challenge"),
    pytest.param({"challenge": "YW5vdGhlcg"}, "challenge", id="challenge_b64url"),
    pytest.param({"user_present": False}, "not present|presence was required", id="user_present"),
]


@pytest.mark.parametrize(
    "forgery, refusal", [*FORGERIES, pytest.param({"type": "webauthn.get"}, "client data type", id="type")]
)
def test_py_webauthn_refuses_a_forged_registration(auth, forgery, refusal):
    with pytest.raises(InvalidRegistrationResponse, match=refusal):
        verify_registration(auth.register(creation_options(), **forgery))


def test_py_webauthn_refuses_a_registration_without_user_verification_when_required(auth):
    credential = auth.register(creation_options(), user_verified=False)
    verify_registration(credential)
    with pytest.raises(InvalidRegistrationResponse, match="User verification"):
        verify_registration(credential, require_user_verification=True)


@pytest.mark.parametrize(
    "forgery, refusal", [*FORGERIES, pytest.param({"type": "webauthn.create"}, "client data type", id="type")]
)
def test_py_webauthn_refuses_a_forged_sign_in(registered, forgery, refusal):
    auth, stored = registered
    with pytest.raises(InvalidAuthenticationResponse, match=refusal):
        verify_sign_in(auth.authenticate(request_options(), **forgery), stored.credential_public_key, 0)


def test_py_webauthn_refuses_a_sign_in_without_user_verification_when_required(registered):
    auth, stored = registered
    assertion = auth.authenticate(request_options(), user_verified=False)
    verify_sign_in(assertion, stored.credential_public_key, 0)
    with pytest.raises(InvalidAuthenticationResponse, match="User verification"):
        verify_sign_in(assertion, stored.credential_public_key, 0, require_user_verification=True)


def test_py_webauthn_refuses_a_counter_that_does_not_grow(registered):
    auth, stored = registered
    with pytest.raises(InvalidAuthenticationResponse, match="sign count"):
        verify_sign_in(auth.authenticate(request_options(), sign_count=5), stored.credential_public_key, 5)
    # An explicit value is only reported: the authenticator's own counter went on from 1 to 2.
    assert verify_sign_in(auth.authenticate(request_options()), stored.credential_public_key, 1).new_sign_count == 2


def test_a_clone_is_caught_by_its_counter(registered):
    auth, stored = registered
    twin = auth.clone()
    assert verify_sign_in(auth.authenticate(request_options()), stored.credential_public_key, 0).new_sign_count == 1
    assert verify_sign_in(auth.authenticate(request_options()), stored.credential_public_key, 1).new_sign_count == 2
    # Same key, so the signature is good; but the twin's counter only reaches 1.
    with pytest.raises(InvalidAuthenticationResponse, match="sign count"):
        verify_sign_in(twin.authenticate(request_options()), stored.credential_public_key, 2)


def test_a_signature_by_another_key_is_refused(registered):
    auth, stored = registered
    other = SoftwareAuthenticator()
    other.register(creation_options())
    assertion = other.authenticate(request_options())
    with pytest.raises(InvalidAuthenticationResponse, match="signature"):
        verify_sign_in(assertion, stored.credential_public_key, 0)
