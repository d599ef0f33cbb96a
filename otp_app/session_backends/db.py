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
- The table holds a hash of each key, never the key: a read of the table yields no session.
- A session ends 12 hours (SESSION_COOKIE_AGE) after its login, or SESSION_IDLE_SECONDS after
  its last use; a used session's row is refreshed at most once a minute, not on every request.
  Both follow the app's clock.
Everything else (signing, encoding) is Django's.
"""
import base64
import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from django.conf import settings
from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.db import IntegrityError

from .. import clock, rows, session_state
from ..models import Session

_KEY_DRAWS = 5  # a key collides with one in use practically never; anything else is an error
_STARTED_KEY = "_session_started"  # when the session's login began, on the app's clock
_REFRESH_SECONDS = 60  # how far an idle deadline may lag behind the session's last use


def new_key() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode().lower()


def stored_key(session_key: str) -> str:
    """What the table holds for a key: SHA-256's first 160 bits, as many as the key has. A
    key's hash opens nothing: used as a cookie, it is hashed again."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:40]


def _moment(now: float) -> datetime:
    return datetime.fromtimestamp(now, tz=timezone.utc)


class SessionStore(db.SessionStore):
    # The account of the session's row, read with it; None for a new session or one that
    # belongs to no account.
    account = None
    _unsaved_key = False
    _read_expiry = None  # the expiry of the row as read

    @classmethod
    def get_model_class(cls):
        return Session

    def _get_session_from_db(self):
        session, self.account = rows.first_with(
            self.model, "user",
            ("session_key", "=", stored_key(self.session_key)), ("expire_date", ">", _moment(clock.now())),
        )
        if session is None:
            self._session_key = None
            return None
        self._read_expiry = session.expire_date
        return session

    def load(self):
        data = super().load()
        if data and self._read_expiry is not None:
            # Used now: push the idle deadline on, once it lags by more than a minute.
            self.modified = self.modified or (self.get_expiry_date(data=data) - self._read_expiry).total_seconds() > _REFRESH_SECONDS
        return data

    def get_expiry_date(self, *, data=None, **kwargs) -> datetime:
        """12 hours after the login, or SESSION_IDLE_SECONDS from now, whichever comes first."""
        now = clock.now()
        data = self._get_session() if data is None else data
        expiry = data.get(_STARTED_KEY, now) + settings.SESSION_COOKIE_AGE
        if settings.SESSION_IDLE_SECONDS:
            expiry = min(expiry, now + settings.SESSION_IDLE_SECONDS)
        return _moment(expiry)

    def get_expiry_age(self, **kwargs) -> int:
        return max(0, int((self.get_expiry_date() - _moment(clock.now())).total_seconds()))

    def exists(self, session_key):
        return super().exists(stored_key(session_key))

    def delete(self, session_key=None):
        session_key = session_key or self.session_key
        if session_key is not None:
            super().delete(stored_key(session_key))

    def _row(self, data) -> dict:
        """The columns of this session's row besides its key, for `data`."""
        data.setdefault(_STARTED_KEY, clock.now())
        return {
            "session_data": self.encode(data), "expire_date": self.get_expiry_date(data=data), "user": session_state.account_id(data),
        }

    def create_model_instance(self, data):
        row = self._row(data)
        return self.model(
            session_key=stored_key(self._get_or_create_session_key()), session_data=row["session_data"],
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
                if not rows.update(self.model, row, ("session_key", "=", stored_key(self.session_key))):
                    raise UpdateError  # deleted meanwhile (Django's answer: SessionInterrupted)
                return
            try:
                rows.insert(self.model, {"session_key": stored_key(self.session_key), **row})
            except IntegrityError as error:
                if not self._unsaved_key:
                    raise CreateError from error
                self._session_key = new_key()
                continue
            self._unsaved_key = False
            return
        raise CreateError
