"""The states of a session, and what a session keeps for them.

anonymous -> (login: password proven) -> pending -> (a code proven) -> full. An account without
2FA goes straight to full. Only a full session is a Django login, so a pending session never
opens anything else that trusts `request.user` (the admin, for one).
"""

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.utils.crypto import constant_time_compare

PENDING = "pending"
FULL = "full"

PENDING_KEY = "twofa_pending"  # the pending login: its account, since when, its password hash
PROVEN_AT_KEY = "twofa_proven_at"  # when this session last proved a second factor
LOGIN_KEY = "twofa_login"  # when this session's login began, and the methods it proved since

PASSWORD = "password"  # the methods a session proves: the password, or a factor's Proof value


def begin_pending(session, *, user_id: str, password_hash: str, now: float) -> None:
    session[PENDING_KEY] = {"user_id": user_id, "since": now, "hash": password_hash}


def end_pending(session) -> None:
    session.pop(PENDING_KEY, None)


def pending_account_id(session, *, now: float) -> str | None:
    """The account a pending login waits for a code of; None when there is none, or it waited
    longer than TWOFA_PENDING_SECONDS (then it ends)."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    if now - pending.get("since", 0) > settings.TWOFA_PENDING_SECONDS:
        end_pending(session)
        return None
    return pending.get("user_id")


def pending_password_matches(session, password_hash: str) -> bool:
    """Whether the password is still the one the pending login proved: a change of password while
    a login is pending ends it, as Django ends full sessions."""
    pending = session.get(PENDING_KEY) or {}
    return constant_time_compare(pending.get("hash", ""), password_hash)


def account_id(data: dict) -> str | None:
    """The id of the account a session belongs to, pending or full, from its data."""
    pending = data.get(PENDING_KEY)
    if isinstance(pending, dict):
        return pending.get("user_id")
    return data.get(SESSION_KEY)


def is_full(data: dict) -> bool:
    """Whether a session's data is a full session's: a Django login, no login pending."""
    return data.get(SESSION_KEY) is not None and not isinstance(data.get(PENDING_KEY), dict)


def begin_login(session, *, method: str, now: float) -> None:
    """A login began now, proven by `method` (the password, or a passkey that signs in)."""
    session[LOGIN_KEY] = {"at": now, "methods": [method]}


def mark_second_factor_proven(session, *, now: float, method: str | None = None) -> None:
    """The second factor proven now; by `method`, which the login's methods then name (a
    factor just enrolled proves that factor, not the person: no method)."""
    session[PROVEN_AT_KEY] = now
    if method is None:
        return
    login = session.get(LOGIN_KEY)
    if not isinstance(login, dict):  # a passkey that signs in proves both
        begin_login(session, method=method, now=now)
    elif method not in login["methods"]:
        session[LOGIN_KEY] = {**login, "methods": [*login["methods"], method]}


def login_info(session) -> tuple[float | None, list[str], float | None]:
    """(when the login began, the methods proven since, when the second factor was last proven)."""
    login = session.get(LOGIN_KEY)
    if not isinstance(login, dict):
        return None, [], _proven_at(session)
    return login.get("at"), list(login.get("methods", [])), _proven_at(session)


def reauthenticated_until(session, *, now: float) -> float | None:
    """Until when this session counts as having proven its second factor recently: within
    TWOFA_REAUTH_SECONDS of the proof. None when it does not (any more)."""
    proven_at = _proven_at(session)
    if proven_at is None or not 0 <= now - proven_at <= settings.TWOFA_REAUTH_SECONDS:
        return None
    return proven_at + settings.TWOFA_REAUTH_SECONDS


def second_factor_recent(session, *, now: float) -> bool:
    """Whether this session proved the second factor within TWOFA_REAUTH_SECONDS."""
    return reauthenticated_until(session, now=now) is not None


def _proven_at(session) -> float | None:
    proven_at = session.get(PROVEN_AT_KEY)
    return proven_at if isinstance(proven_at, (int, float)) else None
