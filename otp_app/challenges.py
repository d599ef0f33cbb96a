"""Passkey challenges: bound to the session that asked for one, used once, expiring.

The session keeps the challenge, what it was issued for and until when. The first attempt that
sends an answer takes it out, right or wrong. Two requests of one session racing with one answer
(on one instance or two) both find it, so the passkey's row records the challenge it answered
and accepts each answer once (services.accept_passkey); a new passkey's credential id is unique.
"""

import secrets

from django.conf import settings
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
    """The challenge this session was issued for `purpose` and `user_id`, taken out of the
    session by this call; Refused when there is none or it expired."""
    issued = session.pop(KEY, None)
    if not isinstance(issued, dict) or (issued.get("purpose"), issued.get("user_id")) != (purpose, user_id):
        raise Refused(f"no {purpose} challenge in this session")
    if not now <= issued.get("expires", 0):
        raise Refused("challenge expired")
    return base64url_to_bytes(issued["challenge"])
