"""SESSION_ENGINE: Django's database-backed sessions, made cheaper on the hot path.

- Sessions are rows of `otp_app.Session`, which names the session's account in a column; one
  plain SQL statement (rows.py) reads the session and its account together, and the account is
  handed to authentication (backends.py) instead of being read again.
- A new session key (login, otp/validate) is not written as an empty row that the response
  then updates: the row is inserted once, with its data, when the response saves the session.
- A session's row is written with one plain INSERT or UPDATE, not a model save.
Everything else (signing, expiry, the key's format) is Django's.
"""
from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, UpdateError
from django.db import IntegrityError
from django.utils import timezone
from django.utils.crypto import get_random_string

from .. import rows

_KEY_DRAWS = 5  # a key collides with one in use practically never; anything else is an error


class SessionStore(db.SessionStore):
    # The account of the session's row, read with it; None for a new session or one that
    # belongs to no account.
    account = None
    _unsaved_key = False

    @classmethod
    def get_model_class(cls):
        from ..models import Session

        return Session

    def _get_session_from_db(self):
        session, self.account = rows.first_with(
            self.model, "user", ("session_key", "=", self.session_key), ("expire_date", ">", timezone.now())
        )
        if session is None:
            self._session_key = None
        return session

    def create_model_instance(self, data):
        from ..sessions import account_id

        session = super().create_model_instance(data)
        session.user_id = account_id(data)
        return session

    def create(self):
        # A fresh key that no row holds yet; save() inserts it, drawing again on a collision.
        self._session_key = get_random_string(32, VALID_KEY_CHARS)
        self._unsaved_key = True
        self.modified = True
        if not hasattr(self, "_session_cache"):
            self._session_cache = {}  # a new key has no row to load

    def save(self, must_create=False):
        if self.session_key is None:
            self.create()
        must_create = must_create or self._unsaved_key
        data = self._get_session(no_load=must_create)
        for _ in range(_KEY_DRAWS):
            session = self.create_model_instance(data)
            values = {"session_data": session.session_data, "expire_date": session.expire_date, "user": session.user_id}
            if not must_create:
                if not rows.update(self.model, values, ("session_key", "=", session.session_key)):
                    raise UpdateError  # deleted meanwhile (Django's answer: SessionInterrupted)
                return
            try:
                rows.insert(self.model, {"session_key": session.session_key, **values})
            except IntegrityError as error:
                if not self._unsaved_key:
                    raise CreateError from error
                self._session_key = get_random_string(32, VALID_KEY_CHARS)
                continue
            self._unsaved_key = False
            return
        raise CreateError
