"""Django's database-backed session stores (SESSION_ENGINE), made cheaper on the hot path.

- A session's row is read with one plain SQL statement (rows.py) rather than a queryset.
- A new session key (login, otp/validate) is not written as an empty row that the response
  then updates: the row is inserted once, with its data, when the response saves the session.
Everything else (signing, expiry, key format, the cache in `cached_db`) is Django's.
"""
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError
from django.utils import timezone
from django.utils.crypto import get_random_string

from .. import rows


class CheapReadsAndWrites:
    _unsaved_key = False

    def _get_session_from_db(self):
        session = rows.first(
            self.model, ("session_key", "=", self.session_key), ("expire_date", ">", timezone.now())
        )
        if session is None:
            self._session_key = None
        return session

    def create(self):
        # A fresh key that no row holds yet; save() inserts it, choosing again on a collision
        # (32 characters from 36: practically never).
        self._session_key = get_random_string(32, VALID_KEY_CHARS)
        self._unsaved_key = True
        self.modified = True
        if not hasattr(self, "_session_cache"):
            self._session_cache = {}  # a new key has no row to load

    def save(self, must_create=False):
        if self.session_key is None:
            self.create()
        while True:
            try:
                super().save(must_create=must_create or self._unsaved_key)
            except CreateError:
                if not self._unsaved_key:
                    raise
                self._session_key = get_random_string(32, VALID_KEY_CHARS)
                continue
            self._unsaved_key = False
            return
