"""A passkey authenticator in software, for tests that register and sign in with WebAuthn.

`SoftwareAuthenticator` plays both the browser and the authenticator: given the options JSON the
API hands out, it returns exactly what a browser's `credential.toJSON()` gives (W3C WebAuthn
Level 3 RegistrationResponseJSON / AuthenticationResponseJSON, binary values base64url without
padding), ready to POST as the `credential` field. Everything is built by hand: an EC P-256 key
pair per credential, the authenticator data, the client data JSON, a CBOR attestation object
with fmt "none" and a DER ECDSA-SHA256 signature. Nothing of py_webauthn is mocked.

    auth = SoftwareAuthenticator()
    credential = auth.register(creation_options)      # the dict under "publicKey"
    assertion = auth.authenticate(request_options)

Keyword overrides of `register` and `authenticate` forge one response without changing how the
authenticator works: `origin`, `rp_id` (whose hash goes into the authenticator data),
`challenge`, `type`, `user_present`, `user_verified`, `backup_eligible`, `backed_up`,
`sign_count`, `credential`, and `user_handle` (sign-in only). `clone()` copies the keys and
counters, as a cloned security key would.
"""

import base64
import copy
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ES256 = -7  # COSE algorithm: ECDSA with SHA-256 on P-256, the only one this authenticator has
AAGUID = bytes(16)  # "no particular model", what fmt "none" gives anyway

# Authenticator data flags (WebAuthn §6.1)
UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40

_UNSET: Any = object()


def b64url(data: bytes) -> str:
    """Base64url without padding, WebAuthn's encoding of binary values in JSON."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AuthenticatorError(Exception):
    """What a browser would reject with a DOMException; `name` is that exception's name."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name


@dataclass
class Credential:
    """A discoverable credential (a passkey) held by the authenticator.

    `sign_count` is the counter the authenticator keeps; set it to jump the counter."""

    id: bytes
    rp_id: str
    user_handle: bytes
    private_key: ec.EllipticCurvePrivateKey
    sign_count: int = 0
    backup_eligible: bool = False
    backed_up: bool = False

    @property
    def id_b64(self) -> str:
        return b64url(self.id)

    def cose_public_key(self) -> bytes:
        """The COSE_Key of the attested credential data: EC2, ES256, P-256, x and y."""
        numbers = self.private_key.public_key().public_numbers()
        return cbor2.dumps(
            {1: 2, 3: ES256, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        )

    def spki_public_key(self) -> bytes:
        """The public key as SubjectPublicKeyInfo DER, the `publicKey` of RegistrationResponseJSON."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class SoftwareAuthenticator:
    """A platform passkey authenticator and the browser around it, for tests.

    `origin` is the page's origin put in the client data; `rp_id` is used when the options give
    none. With `counter=False` every signature counter stays at 0, as many passkey providers
    do; otherwise each sign-in adds 1. New credentials get ids of `credential_id_length` random
    bytes and the given backup flags (BE/BS)."""

    def __init__(
        self,
        origin: str = "http://testserver",
        rp_id: str = "localhost",
        *,
        counter: bool = True,
        credential_id_length: int = 32,
        backup_eligible: bool = False,
        backed_up: bool = False,
    ):
        self.origin = origin
        self.rp_id = rp_id
        self.counter = counter
        self.credential_id_length = credential_id_length
        self.backup_eligible = backup_eligible
        self.backed_up = backed_up
        self.credentials: list[Credential] = []  # oldest first

    # --- the two ceremonies ---------------------------------------------------------------

    def register(
        self,
        options: dict | str,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: bytes | str | None = None,
        type: str = "webauthn.create",
        top_origin: str | None = None,
        user_present: bool = True,
        user_verified: bool = True,
        backup_eligible: bool | None = None,
        backed_up: bool | None = None,
        sign_count: int | None = None,
        credential: Credential | str | bytes | None = None,
        credential_id_length: int | None = None,
    ) -> dict:
        """Create a credential for PublicKeyCredentialCreationOptionsJSON `options` and return
        the RegistrationResponseJSON. Like a browser, refuses (AuthenticatorError) when the
        options exclude a credential it holds or do not allow ES256. `credential=` attests an
        existing credential again (same id and key) instead, skipping those checks."""
        options = _public_key(options)
        target_rp = options.get("rp", {}).get("id") or self.rp_id
        if credential is None:
            algorithms = [param.get("alg") for param in options.get("pubKeyCredParams") or []]
            if algorithms and ES256 not in algorithms:
                raise AuthenticatorError("NotSupportedError", f"only ES256 (-7), not {algorithms}")
            excluded = {entry["id"] for entry in options.get("excludeCredentials") or []}
            if any(held.rp_id == target_rp and held.id_b64 in excluded for held in self.credentials):
                raise AuthenticatorError(
                    "InvalidStateError", "a credential in excludeCredentials is on this authenticator"
                )
            length = self.credential_id_length if credential_id_length is None else credential_id_length
            chosen = Credential(
                id=os.urandom(length),
                rp_id=target_rp,
                user_handle=b64url_decode(options["user"]["id"]),
                private_key=ec.generate_private_key(ec.SECP256R1()),
                backup_eligible=self.backup_eligible if backup_eligible is None else backup_eligible,
                backed_up=self.backed_up if backed_up is None else backed_up,
            )
            self.credentials.append(chosen)
        else:
            chosen = self.credential(credential)

        client_data = self._client_data(
            type, options["challenge"] if challenge is None else challenge, origin, top_origin
        )
        attested = AAGUID + struct.pack(">H", len(chosen.id)) + chosen.id + chosen.cose_public_key()
        auth_data = self._authenticator_data(
            chosen,
            rp_id=rp_id,
            flags=AT,
            user_present=user_present,
            user_verified=user_verified,
            backup_eligible=backup_eligible,
            backed_up=backed_up,
            sign_count=chosen.sign_count if sign_count is None else sign_count,
        )
        attestation_object = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data + attested})
        extensions = {"credProps": {"rk": True}} if (options.get("extensions") or {}).get("credProps") else {}
        return {
            "id": chosen.id_b64,
            "rawId": chosen.id_b64,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data + attested),
                "transports": ["internal"],
                "publicKey": b64url(chosen.spki_public_key()),
                "publicKeyAlgorithm": ES256,
                "attestationObject": b64url(attestation_object),
            },
            "authenticatorAttachment": "platform",
            "clientExtensionResults": extensions,
        }

    def authenticate(
        self,
        options: dict | str,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: bytes | str | None = None,
        type: str = "webauthn.get",
        top_origin: str | None = None,
        user_present: bool = True,
        user_verified: bool = True,
        backup_eligible: bool | None = None,
        backed_up: bool | None = None,
        sign_count: int | None = None,
        credential: Credential | str | bytes | None = None,
        user_handle: bytes | str | None = _UNSET,
    ) -> dict:
        """Sign in with PublicKeyCredentialRequestOptionsJSON `options`; return the
        AuthenticationResponseJSON. Uses the newest credential for the options' rpId that is in
        allowCredentials or, when that list is empty, the newest one for the rpId; or the given
        `credential=`, whatever the options say. Every call moves that credential's counter on
        by 1 (unless counter=False); `sign_count=` only changes the value reported.
        `user_handle=None` leaves userHandle out."""
        options = _public_key(options)
        if credential is not None:
            chosen = self.credential(credential)
        else:
            target_rp = options.get("rpId") or self.rp_id
            allowed = {entry["id"] for entry in options.get("allowCredentials") or []}
            candidates = [
                held for held in self.credentials if held.rp_id == target_rp and (not allowed or held.id_b64 in allowed)
            ]
            if not candidates:
                raise AuthenticatorError("NotAllowedError", f"no credential for {target_rp!r} among those allowed")
            chosen = candidates[-1]

        if self.counter:
            chosen.sign_count += 1
        client_data = self._client_data(
            type, options["challenge"] if challenge is None else challenge, origin, top_origin
        )
        auth_data = self._authenticator_data(
            chosen,
            rp_id=rp_id,
            flags=0,
            user_present=user_present,
            user_verified=user_verified,
            backup_eligible=backup_eligible,
            backed_up=backed_up,
            sign_count=chosen.sign_count if sign_count is None else sign_count,
        )
        signature = chosen.private_key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        response = {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }
        handle = chosen.user_handle if user_handle is _UNSET else user_handle
        if handle is not None:
            response["userHandle"] = b64url(handle) if isinstance(handle, bytes) else handle
        return {
            "id": chosen.id_b64,
            "rawId": chosen.id_b64,
            "type": "public-key",
            "response": response,
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
        }

    # --- state ----------------------------------------------------------------------------

    def credential(self, which: Credential | str | bytes | None = None) -> Credential:
        """A held credential: by id (base64url or bytes), itself, or the newest when None."""
        if isinstance(which, Credential):
            return which
        if not self.credentials:
            raise AuthenticatorError("NotAllowedError", "this authenticator holds no credential")
        if which is None:
            return self.credentials[-1]
        wanted = which if isinstance(which, bytes) else b64url_decode(which)
        for held in self.credentials:
            if held.id == wanted:
                return held
        raise KeyError(f"no credential with id {b64url(wanted)}")

    def credential_id(self, which: Credential | str | bytes | None = None) -> str:
        """The base64url id of a held credential (the newest when None)."""
        return self.credential(which).id_b64

    def clone(self) -> "SoftwareAuthenticator":
        """A copy with the same keys and counters; from then on each keeps its own counters."""
        twin = copy.copy(self)
        twin.credentials = [copy.copy(held) for held in self.credentials]
        return twin

    # --- building blocks ------------------------------------------------------------------

    def _client_data(self, type: str, challenge: bytes | str, origin: str | None, top_origin: str | None) -> bytes:
        """`top_origin`: the page was framed by that site (crossOrigin true, topOrigin set)."""
        encoded = b64url(challenge) if isinstance(challenge, bytes) else challenge
        collected = {"type": type, "challenge": encoded, "origin": origin or self.origin, "crossOrigin": False}
        if top_origin is not None:
            collected.update(crossOrigin=True, topOrigin=top_origin)
        return json.dumps(collected, separators=(",", ":")).encode()

    @staticmethod
    def _authenticator_data(
        credential: Credential,
        *,
        rp_id: str | None,
        flags: int,
        user_present: bool,
        user_verified: bool,
        backup_eligible: bool | None,
        backed_up: bool | None,
        sign_count: int,
    ) -> bytes:
        """rpIdHash, flags and signCount; the caller appends attested credential data."""
        eligible = credential.backup_eligible if backup_eligible is None else backup_eligible
        backed = credential.backed_up if backed_up is None else backed_up
        flags |= (UP if user_present else 0) | (UV if user_verified else 0)
        flags |= (BE if eligible else 0) | (BS if backed else 0)
        rp_id_hash = hashlib.sha256((rp_id or credential.rp_id).encode()).digest()
        return rp_id_hash + bytes([flags]) + struct.pack(">I", sign_count)


def _public_key(options: dict | str) -> dict:
    """The options themselves, from a dict or its JSON, unwrapped from {"publicKey": ...}."""
    if isinstance(options, str):
        options = json.loads(options)
    return options.get("publicKey", options)
