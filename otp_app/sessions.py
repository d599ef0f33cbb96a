"""Session states of the API and who may call what.

anonymous -> (login, password proven) -> pending -> (otp/validate) -> full.
An account without 2FA goes straight to full. Only a full session is a Django login, so a
pending session never opens anything else that trusts `request.user` (the admin, for one).
Also here: the origin rule that refuses cross-site requests.
"""
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import auth
from django.utils.crypto import constant_time_compare
from rest_framework import authentication, exceptions, permissions

from . import backends, clock
from .models import UserModel

PENDING = "pending"
FULL = "full"
_PENDING_KEY = "twofa_pending"
_PROVEN_AT_KEY = "twofa_proven_at"


def start(request, user: UserModel, *, now: float) -> None:
    """Open the session the password earns: full without 2FA, pending with it."""
    request.session.flush()  # a new key, and nothing left over from whoever used this browser
    if user.otp_enabled:
        request.session[_PENDING_KEY] = {
            "user_id": str(user.pk),
            "since": now,
            # A password change while a login is pending invalidates it, as Django does for logins.
            "hash": user.get_session_auth_hash(),
        }
    else:
        auth.login(request, user, backend=backends.PATH)


def complete_second_factor(request, user: UserModel, *, now: float) -> None:
    """Turn a pending (or full) session into a full one, with a new session key."""
    request.session.pop(_PENDING_KEY, None)
    if auth.SESSION_KEY in request.session:
        request.session.cycle_key()  # auth.login rotates the key itself only for a new login
    auth.login(request, user, backend=backends.PATH)
    second_factor_proven(request, now=now)


def second_factor_proven(request, *, now: float) -> None:
    request.session[_PROVEN_AT_KEY] = now


def second_factor_recent(request, *, now: float) -> bool:
    """Whether this session proved the second factor within TWOFA_REAUTH_SECONDS."""
    proven_at = request.session.get(_PROVEN_AT_KEY)
    return isinstance(proven_at, (int, float)) and 0 <= now - proven_at <= settings.TWOFA_REAUTH_SECONDS


def end(request) -> None:
    auth.logout(request)


def account_id(data: dict) -> str | None:
    """The id of the account a session belongs to, full or pending, from its data."""
    pending = data.get(_PENDING_KEY)
    if isinstance(pending, dict):
        return pending.get("user_id")
    return data.get(auth.SESSION_KEY)


def pending_user(request, *, now: float) -> UserModel | None:
    pending = request.session.get(_PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    if now - pending.get("since", 0) > settings.TWOFA_PENDING_SECONDS:
        request.session.pop(_PENDING_KEY, None)
        return None
    user = backends.account(request.session, pending.get("user_id"))
    if user is None or not user.is_active:
        return None
    if not constant_time_compare(pending.get("hash", ""), user.get_session_auth_hash()):
        return None
    return user


class SessionAuthentication(authentication.BaseAuthentication):
    """The session cookie, in either state; `request.auth` says which.

    DRF's own SessionAuthentication would demand a Django CSRF token, which the React app
    never sends; cross-site requests are refused by `TrustedOrigin` instead.
    """

    def authenticate(self, request):
        user = getattr(request._request, "user", None)
        if user is not None and user.is_authenticated and user.is_active:
            return (user, FULL)
        user = pending_user(request._request, now=clock.now())
        return (user, PENDING) if user is not None else None

    def authenticate_header(self, request):
        # Makes "no session" a 401 rather than a 403.
        return 'Session realm="api"'


class FullSession(permissions.BasePermission):
    message = "Complete two-factor authentication first: send a code to otp/validate"

    def has_permission(self, request, view):
        if request.auth is None:
            return False  # DRF answers 401 for an unauthenticated request
        return request.auth == FULL


class PendingOrFullSession(permissions.BasePermission):
    def has_permission(self, request, view):
        return request.auth in (PENDING, FULL)


def own_user(request, user_id) -> UserModel:
    """The session's user; a `user_id` in the body may only name that same account."""
    if user_id is not None and str(user_id) != str(request.user.pk):
        raise exceptions.PermissionDenied("user_id does not belong to the logged-in account")
    return request.user


def trusted_origins() -> set[str]:
    return {_origin_of(url) for url in settings.TWOFA_TRUSTED_ORIGINS}


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class TrustedOrigin(permissions.BasePermission):
    """Refuse state-changing requests sent by a page of a foreign origin.

    Browsers send `Origin` with every cross-origin request and with every POST; pages cannot
    forge it. So: no `Origin` (Postman, Insomnia, curl) passes, the API's own origin (Swagger
    UI) and the configured front ends pass, anything else is a cross-site request and fails.
    The session cookie is SameSite=Lax as a second wall.
    """

    message = "Cross-site request refused: this origin is not allowed"

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return True
        # Read from META: `request.headers` would first build a dict of every header.
        origin = request.META.get("HTTP_ORIGIN")
        if origin is None:
            # No Origin: a non-browser client, unless the browser says the request is cross-site
            # (a Referer from elsewhere, or Fetch Metadata).
            if request.META.get("HTTP_SEC_FETCH_SITE") == "cross-site":
                raise exceptions.PermissionDenied(self.message)
            referer = request.META.get("HTTP_REFERER")
            if referer is None:
                return True
            origin = _origin_of(referer)
        if origin.lower() == _origin_of(request.build_absolute_uri("/")) or origin.lower() in trusted_origins():
            return True
        # Raised here rather than returned: DRF would turn a refusal of an anonymous request into
        # "credentials were not provided", which is not what happened.
        raise exceptions.PermissionDenied(self.message)
