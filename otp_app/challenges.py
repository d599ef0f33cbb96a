"""Passkey challenges: bound to the session that asked for one, used once, expiring.

The session keeps the challenge, what it was issued for and until when. The first attempt that
sends an answer uses it up, right or wrong. Used challenges are also marked in the shared cache
(`cache.add` is atomic in every backend), so two requests of one session racing with one answer,
on one instance or on two, cannot both use it.
"""

import hashlib
import secrets

from django.conf import settings
from django.core.cache import cache
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from .passkeys import Refused

KEY = "twofa_webauthn"  # in the session: {"challenge", "purpose", "user_id", "expires"}
REGISTRATION = "registration"
SECOND_FACTOR = "second_factor"  # a pending session proves its second factor
SIGN_IN = "sign_in"  # an anonymous session signs in without a password
STEP_UP = "step_up"  # a full session proves its second factor again


def issue(session, *, purpose: str, user_id: str | None, now: float) -> bytes:
    """A new challenge for `purpose` (and the account it is for), replacing any earlier one."""
    challenge = secrets.token_bytes(32)
    session[KEY] = {
        "challenge": bytes_to_base64url(challenge),
        "purpose": purpose,
        "user_id": user_id,
        "expires": now + settings.TWOFA_WEBAUTHN_TIMEOUT,
    }
    return challenge


def take(session, *, purpose: str, user_id: str | None, now: float) -> bytes:
    """The challenge this session was issued for `purpose` and `user_id`, used up by this call;
    Refused when there is none, it expired, or it was used."""
    issued = session.pop(KEY, None)
    if not isinstance(issued, dict) or (issued.get("purpose"), issued.get("user_id")) != (purpose, user_id):
        raise Refused(f"no {purpose} challenge in this session")
    if not now <= issued.get("expires", 0):
        raise Refused("challenge expired")
    challenge = issued["challenge"]
    used = "webauthn-challenge-used:" + hashlib.sha256(challenge.encode()).hexdigest()
    if not cache.add(used, 1, timeout=settings.TWOFA_WEBAUTHN_TIMEOUT + 60):
        raise Refused("challenge used before")
    return base64url_to_bytes(challenge)
