"""SESSION_ENGINE: Django's database-backed sessions, made cheaper on the hot path.

- Sessions are rows of `otp_app.Session`, which names the session's account in a column; one
  plain SQL statement (rows.py) reads the session and its account together, and the account is
  handed to authentication (backends.py) instead of being read again.
- A new session key (login, otp/validate) is not written as an empty row that the response
  then updates: the row is inserted once, with its data, when the response saves the session.
- A session's row is written with one plain INSERT or UPDATE, not a model save.
- A key is 160 random bits from one call of the system's generator, written in base32's lower
  case (32 of Django's key characters). Django draws its 32 characters one by one, about 45
  reads of the generator (each a system call).
Everything else (signing, expiry) is Django's.
"""
import base64
import secrets

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.db import IntegrityError
from django.utils import timezone

from .. import rows

_KEY_DRAWS = 5  # a key collides with one in use practically never; anything else is an error


def new_key() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode().lower()


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

    def _row(self, data) -> dict:
        """The columns of this session's row besides its key, for `data`."""
        from ..sessions import account_id

        return {"session_data": self.encode(data), "expire_date": self.get_expiry_date(), "user": account_id(data)}

    def create_model_instance(self, data):
        row = self._row(data)
        return self.model(
            session_key=self._get_or_create_session_key(), session_data=row["session_data"],
            expire_date=row["expire_date"], user_id=row["user"],
        )

    def _get_new_session_key(self):
        while True:
            key = new_key()
            if not self.exists(key):
                return key

    def create(self):
        # A fresh key that no row holds yet; save() inserts it, drawing again on a collision.
        self._session_key = new_key()
        self._unsaved_key = True
        self.modified = True
        if not hasattr(self, "_session_cache"):
            self._session_cache = {}  # a new key has no row to load

    def save(self, must_create=False):
        if self.session_key is None:
            self.create()
        must_create = must_create or self._unsaved_key
        row = self._row(self._get_session(no_load=must_create))
        for _ in range(_KEY_DRAWS):
            if not must_create:
                if not rows.update(self.model, row, ("session_key", "=", self.session_key)):
                    raise UpdateError  # deleted meanwhile (Django's answer: SessionInterrupted)
                return
            try:
                rows.insert(self.model, {"session_key": self.session_key, **row})
            except IntegrityError as error:
                if not self._unsaved_key:
                    raise CreateError from error
                self._session_key = new_key()
                continue
            self._unsaved_key = False
            return
        raise CreateError
