"""The authentication backend: Django's ModelBackend, except that the account behind a session
is the one read together with the session's row (session_backends), when it is that one."""

import contextlib
from contextvars import ContextVar

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError

from .models import UserModel

PATH = "otp_app.backends.AccountBackend"

# The session whose account Django's `auth.get_user` is looking up, set only during that call
# (middleware.AuthenticationMiddleware): `get_user(user_id)` is not given the request.
_session_being_read = ContextVar("session_being_read", default=None)


def account(session, user_id) -> UserModel | None:
    """The account `user_id` names: the one read with `session` when it is that one."""
    if user_id is None:
        return None
    read = getattr(session, "account", None)
    if read is not None and str(read.pk) == str(user_id):
        return read
    try:  # rarely run (the session's own row names the account): the ORM's lookup
        return UserModel._default_manager.filter(pk=user_id).first()
    except ValidationError:  # no id this table can hold: no account
        return None


@contextlib.contextmanager
def reading(session):
    """Let `get_user` take the account read with `session`."""
    token = _session_being_read.set(session)
    try:
        yield
    finally:
        _session_being_read.reset(token)


class AccountBackend(ModelBackend):
    def get_user(self, user_id):
        user = account(_session_being_read.get(), user_id)
        return user if user is not None and self.user_can_authenticate(user) else None
