"""TOTP secrets at rest: encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under rotating keys,
and recovery codes as keyed hashes. A stolen database dump holds neither a secret nor a code.

Keys come from TWOFA_ENCRYPTION_KEYS: the first encrypts, every one decrypts, so a new key can
be put first and `manage.py rotate_otp_keys` re-encrypts what the old ones wrote.
"""

import base64
import functools
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """A stored secret does not decrypt with any configured key (a key was removed too early)."""


def _keys() -> list[bytes]:
    return [key.encode() for key in settings.TWOFA_ENCRYPTION_KEYS]


def _cipher() -> MultiFernet:
    return _cipher_for(tuple(settings.TWOFA_ENCRYPTION_KEYS))


@functools.lru_cache(maxsize=8)
def _cipher_for(keys: tuple[str, ...]) -> MultiFernet:
    # Built once per key list rather than on every code checked; a changed setting is a new key.
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt(secret: str) -> str:
    return _cipher().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _cipher().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise SecretUnreadable from error


def is_current(token: str) -> bool:
    """Whether `token` is already encrypted with the first (current) key."""
    try:
        Fernet(_keys()[0]).decrypt(token.encode())
        return True
    except InvalidToken:
        return False


def reencrypt(token: str) -> str:
    """The same secret, encrypted with the current key."""
    try:
        return _cipher().rotate(token.encode()).decode()
    except InvalidToken as error:
        raise SecretUnreadable from error


def key_from_secret_key(secret_key: str) -> str:
    """A development key derived from SECRET_KEY (production settings require real keys)."""
    digest = hashlib.sha256(b"twofa-secret-encryption:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def recovery_code_hashes(code: str) -> list[str]:
    """The code's keyed hash under each configured key, the current key's first.

    New codes are stored under the current key; a code stored under an older key still matches
    while that key is configured. HMAC rather than a slow password hash: codes carry 50 random
    bits, and without the key a dump of the hashes cannot be searched at all.
    """
    return [
        hmac.new(hashlib.sha256(b"twofa-recovery-codes:" + key).digest(), code.encode(), hashlib.sha256).hexdigest()
        for key in _keys()
    ]
