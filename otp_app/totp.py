"""Pure TOTP (RFC 6238): new secrets, otpauth URLs, and which time step a code matches.

No Django and no storage here; `services.py` decides what a match means for an account.
"""

import hmac

import pyotp

STEP_SECONDS = 30
DIGITS = 6


class _Totp(pyotp.TOTP):
    """pyotp's TOTP, with the secret decoded from base32 once rather than for every code."""

    def byte_secret(self) -> bytes:
        try:
            return self._key
        except AttributeError:
            self._key = super().byte_secret()  # also checks the secret's encoding and length
            return self._key


def new_secret() -> str:
    # 32 base32 characters are 160 bits, the key length RFC 4226 §4 recommends for HMAC-SHA1.
    return pyotp.random_base32()


def otpauth_url(*, secret: str, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def step_at(now: float) -> int:
    return int(now // STEP_SECONDS)


def code_at(*, secret: str, step: int, digits: int = DIGITS) -> str:
    return _Totp(secret, digits=digits).generate_otp(step)


def normalise_code(code: str) -> str:
    # Authenticator apps show "123 456"; people type what they see.
    return "".join(code.split())


def matching_step(*, secret: str, code: str, now: float, window: int = 1, digits: int = DIGITS) -> int | None:
    """The time step whose code equals `code`, within `window` steps of `now`, else None.

    RFC 6238 §5.2 allows a small window for clock drift and network delay. Every step of the
    window is compared, in constant time, so the time taken does not tell which one matched.
    """
    code = normalise_code(code)
    if len(code) != digits or not (code.isascii() and code.isdigit()):
        return None
    current = step_at(now)
    totp = _Totp(secret, digits=digits)
    matched = None
    for step in range(current - window, current + window + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            matched = step
    return matched
