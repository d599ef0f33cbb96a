"""The WebAuthn protocol of passkeys: the options a browser is given and the check of what it sends
back, by py_webauthn. No database and no HTTP here: services.py keeps the rules, flows.py the
session.

Options and responses are WebAuthn's own JSON (binary values base64url without padding), what a
browser's `PublicKeyCredential.parseCreationOptionsFromJSON()` reads and `credential.toJSON()`
writes.
"""

import json
from dataclasses import dataclass

from django.conf import settings
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

MAX_CREDENTIAL_ID_BYTES = 1023  # WebAuthn Level 3, §5.8.3
_TRANSPORTS = {transport.value for transport in AuthenticatorTransport}
# ES256, EdDSA and RS256: what platform authenticators and security keys sign with.
COSE_ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]


class Refused(Exception):
    """What the browser sent is not a valid answer to the challenge; the reason is for logs only."""


@dataclass(frozen=True)
class NewCredential:
    credential_id: str  # base64url
    public_key: bytes  # COSE
    sign_count: int
    transports: list[str]
    backed_up: bool


@dataclass(frozen=True)
class Claim:
    """What an assertion says about itself before it is checked: which credential, which user."""

    credential_id: str
    user_handle: str | None


@dataclass(frozen=True)
class Verified:
    sign_count: int
    backed_up: bool


def creation_options(*, user, user_handle: str, challenge: bytes, exclude: list[str]) -> dict:
    """PublicKeyCredentialCreationOptionsJSON: a discoverable credential (a passkey) for `user`."""
    options = generate_registration_options(
        rp_id=settings.TWOFA_WEBAUTHN_RP_ID,
        rp_name=settings.TWOFA_WEBAUTHN_RP_NAME,
        user_id=base64url_to_bytes(user_handle),
        user_name=user.email,
        user_display_name=user.name or user.email,
        challenge=challenge,
        timeout=settings.TWOFA_WEBAUTHN_TIMEOUT * 1000,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[_descriptor(credential_id) for credential_id in exclude],
        supported_pub_key_algs=COSE_ALGORITHMS,
    )
    return json.loads(options_to_json(options))


def request_options(*, challenge: bytes, allow: list[tuple[str, list[str]]], user_verification: bool) -> dict:
    """PublicKeyCredentialRequestOptionsJSON. `allow`: (credential id, transports) of the passkeys
    that may answer; empty for a sign-in, where the authenticator offers the ones it holds."""
    options = generate_authentication_options(
        rp_id=settings.TWOFA_WEBAUTHN_RP_ID,
        challenge=challenge,
        timeout=settings.TWOFA_WEBAUTHN_TIMEOUT * 1000,
        allow_credentials=[_descriptor(credential_id, transports) for credential_id, transports in allow],
        user_verification=(
            UserVerificationRequirement.REQUIRED if user_verification else UserVerificationRequirement.PREFERRED
        ),
    )
    return json.loads(options_to_json(options))


def verify_registration(credential: dict, *, challenge: bytes, origins: list[str]) -> NewCredential:
    """The new credential, once its type, challenge, origin, RP ID and user presence are right,
    and the id the authenticator attested is the `id` sent (so at most 1,023 bytes)."""
    claimed = _claimed_id(credential)
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=settings.TWOFA_WEBAUTHN_RP_ID,
            expected_origin=origins,
            require_user_verification=False,
            supported_pub_key_algs=COSE_ALGORITHMS,
        )
    except _MALFORMED as error:
        raise Refused(str(error)) from error
    _refuse_framed(credential)
    if bytes_to_base64url(verified.credential_id) != claimed:
        raise Refused("the attested credential id is not the id sent")
    transports = credential.get("response", {}).get("transports")
    return NewCredential(
        credential_id=claimed,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=_known_transports(transports) if isinstance(transports, list) else [],
        backed_up=verified.credential_backed_up,
    )


def claim(credential: dict) -> Claim:
    """The credential id and user handle an assertion names, checked for shape only."""
    credential_id = _claimed_id(credential)
    response = credential.get("response")
    user_handle = response.get("userHandle") if isinstance(response, dict) else None
    if user_handle is not None and not _is_base64url(user_handle):
        raise Refused("malformed userHandle")
    return Claim(credential_id=credential_id, user_handle=user_handle or None)


def verify_assertion(
    credential: dict, *, challenge: bytes, origins: list[str], public_key: bytes, user_verification: bool
) -> Verified:
    """Check an assertion's signature by `public_key`, and its type, challenge, origin, RP ID and
    flags. The signature counter is the caller's to compare: only a valid signature makes a
    counter that does not grow a sign of a cloned authenticator rather than of a forgery."""
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=settings.TWOFA_WEBAUTHN_RP_ID,
            expected_origin=origins,
            credential_public_key=public_key,
            credential_current_sign_count=0,
            require_user_verification=user_verification,
        )
    except _MALFORMED as error:
        raise Refused(str(error)) from error
    _refuse_framed(credential)
    return Verified(sign_count=verified.new_sign_count, backed_up=verified.credential_backed_up)


def _refuse_framed(credential: dict) -> None:
    """Refuse what a page made inside a frame of another site (WebAuthn L3 §7.1 and §7.2,
    `crossOrigin` and `topOrigin`): no page of this service expects to be framed, and one that
    is could be dressed by the framing site. py_webauthn reads neither member. Called once
    py_webauthn has read the client data, so it is base64url of a JSON object."""
    client_data = json.loads(base64url_to_bytes(credential["response"]["clientDataJSON"]))
    if client_data.get("crossOrigin") is True or "topOrigin" in client_data:
        raise Refused("made in a frame of another site")


# What py_webauthn raises on input it cannot read: its own errors, and the decoders' (binascii's
# errors and UnicodeDecodeError are ValueErrors; a missing or mistyped member of the JSON is a
# KeyError, TypeError or AttributeError inside its parser).
_MALFORMED = (WebAuthnException, ValueError, KeyError, TypeError, AttributeError, IndexError)


def _claimed_id(credential: dict) -> str:
    """`id`, once it is base64url of at most 1,023 bytes and equal to `rawId`; in canonical form."""
    credential_id, raw_id = credential.get("id"), credential.get("rawId")
    if not (isinstance(credential_id, str) and _is_base64url(credential_id) and credential_id == raw_id):
        raise Refused("id and rawId must be equal base64url strings")
    raw = base64url_to_bytes(credential_id)
    if not raw or len(raw) > MAX_CREDENTIAL_ID_BYTES:
        raise Refused("credential id length")
    return bytes_to_base64url(raw)


_BASE64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _is_base64url(value) -> bool:
    return isinstance(value, str) and len(value) % 4 != 1 and _BASE64URL.issuperset(value)


def _known_transports(items: list) -> list[str]:
    """The transports WebAuthn names, in order; anything else a client sends (unknown names,
    values that are not strings) is left out, as a browser would."""
    return [item for item in items if isinstance(item, str) and item in _TRANSPORTS]


def _descriptor(credential_id: str, transports: list[str] = ()) -> PublicKeyCredentialDescriptor:
    return PublicKeyCredentialDescriptor(
        id=base64url_to_bytes(credential_id),
        transports=[AuthenticatorTransport(item) for item in _known_transports(transports)],
    )
