"""How an account is authenticated (email and password) and fetched for a session.

Django's ModelBackend, except that the account behind a session is the one read together with
the session's row (session_backends), or else read with one plain SQL statement (rows.py):
every request with a session needs it, so it is the hot path.
"""
from contextvars import ContextVar

from django.contrib import auth
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from . import rows
from .models import UserModel

PATH = "otp_app.backends.AccountBackend"

# The session whose user Django's `auth.get_user` is looking up, set only during that call:
# `get_user(user_id)` is not given the request.
_session_being_read = ContextVar("session_being_read", default=None)


def account(session, user_id) -> UserModel | None:
    """The account `user_id` names: the one read with `session` when it is that one."""
    if user_id is None:
        return None
    read = getattr(session, "account", None)
    if read is not None and str(read.pk) == str(user_id):
        return read
    return rows.first(UserModel, ("id", "=", user_id))


class AccountBackend(ModelBackend):
    def get_user(self, user_id):
        user = account(_session_being_read.get(), user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


def user_of(request):
    """`request.user`, as Django's AuthenticationMiddleware finds it (`auth.get_user`: the
    session's backend, its password-hash check), with the account read along with the session."""
    if not hasattr(request, "_cached_user"):
        reading = _session_being_read.set(request.session)
        try:
            request._cached_user = auth.get_user(request)
        finally:
            _session_being_read.reset(reading)
    return request._cached_user


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    def process_request(self, request):
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: user_of(request))


def update_last_login(sender, user, **kwargs):
    """Django's receiver of the same name (user_logged_in), as one plain UPDATE."""
    user.last_login = timezone.now()
    rows.update(UserModel, {"last_login": user.last_login}, ("id", "=", user.pk))
