"""DRF authentication: the session cookie, in either state; `request.auth` says which."""

from rest_framework import authentication

from . import backends, clock, session_state


class SessionAuthentication(authentication.BaseAuthentication):
    """A full session is Django's login (`request.user`); a pending one names its account in the
    session (session_state). DRF's own SessionAuthentication would demand a Django CSRF token,
    which the React app never sends; cross-site requests are refused by
    `permissions.TrustedOrigin` instead."""

    def authenticate(self, request):
        user = getattr(request._request, "user", None)
        if user is not None and user.is_authenticated and user.is_active:
            return (user, session_state.FULL)
        user = pending_user(request._request.session, now=clock.now())
        return (user, session_state.PENDING) if user is not None else None

    def authenticate_header(self, request):
        # Makes "no session" a 401 rather than a 403.
        return 'Session realm="api"'


def pending_user(session, *, now: float):
    """The account a pending login waits for, while it may still prove a code."""
    user = backends.account(session, session_state.pending_account_id(session, now=now))
    if user is None or not user.is_active:
        return None
    if not session_state.pending_password_matches(session, user.get_session_auth_hash()):
        return None
    return user
