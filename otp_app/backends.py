"""How an account is authenticated (email and password) and fetched for a session.

Django's ModelBackend, except that the account behind a session is read with one plain SQL
statement (rows.py): every request with a session reads it, so it is the hot path.
"""
from django.contrib.auth.backends import ModelBackend

from . import rows
from .models import UserModel

PATH = "otp_app.backends.AccountBackend"


class AccountBackend(ModelBackend):
    def get_user(self, user_id):
        user = rows.first(UserModel, ("id", "=", user_id))
        return user if user is not None and self.user_can_authenticate(user) else None
