"""SESSION_ENGINE: Django's database sessions, in `otp_app.Session`, whose rows name their account.

- One query reads a session with its account, as `select_related` would, by a statement prepared
  once (rows.py); authentication takes the account from it (backends.py). Deleting an account
  deletes its sessions.
- The table holds a hash of each key, never the key: a read of the table yields no session.
- A new key (login) is inserted once, with its data, when the response saves the session; Django
  would insert an empty row first and update it. A rotated key (a second factor proven) moves
  the session's row to it with one UPDATE, where Django deletes the row and inserts another.
- A key is 160 random bits from one read of the system's generator, in base32's lower case.
- A session ends SESSION_COOKIE_AGE (12 h) after its login, or SESSION_IDLE_SECONDS after its
  last use, on the app's clock; a used session's row is refreshed at most once a minute.
- A row also says what its owner sees of it (GET sessions): a public id, whether it is full,
  when it began and was last used, and the client's address and user agent (middleware's
  SessionMiddleware names the request), all written with the row's own writes.
- Synchronous only: the async methods are refused, never half done (the service runs on WSGI).
"""

import base64
import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.db import DatabaseError, IntegrityError, connections, router, transaction

from .. import clock, rows, session_state
from ..client_address import client_address
from ..models import Session

_KEY_DRAWS = 5  # a key collides with one in use practically never; anything else is an error
_STARTED_KEY = "_session_started"  # when the session's login began, on the app's clock
_REFRESH_SECONDS = 60  # how far an idle deadline, or last_active_at, may lag behind the last use
_USER_AGENT_LENGTH = 255


def new_key() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode().lower()


def stored_key(session_key: str) -> str:
    """What the table holds for a key: SHA-256's first 160 bits, as many as the key has. A
    key's hash opens nothing: used as a cookie, it is hashed again."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:40]


class SessionStore(db.SessionStore):
    # The account of the session's row, read with it; None for a new session or one that
    # belongs to no account.
    account = None
    _unsaved_key = False
    _read_expiry = None  # the expiry of the row as read
    _moved_from = None  # the key whose row save() moves to the new key (cycle_key)
    _read_last_active = None  # last_active_at of the row as read
    request = None  # a weak reference to the request this store serves (SessionMiddleware)

    @property
    def row_key(self) -> str | None:
        """The key whose row holds this session now: the one cycle_key replaced, until the
        response moves the row to the new key."""
        return self._moved_from or self.session_key

    @property
    def started_at(self) -> float:
        """When this session's login began, on the app's clock."""
        return self._get_session().get(_STARTED_KEY, clock.now())

    @classmethod
    def get_model_class(cls):
        return Session

    def _get_session_from_db(self):
        # What `select_related("user").get(...)` reads, as one prepared statement (rows.py): every
        # request with a session runs it, and compiling the queryset costs more than the query.
        session, self.account = rows.first_with(
            self.model,
            "user",
            ("session_key", "=", stored_key(self.session_key)),
            ("expire_date", ">", clock.as_datetime(clock.now())),
            only=_READ,
        )
        if session is None:
            self._session_key = None
            return None
        self._read_expiry, self._read_last_active = session.expire_date, session.last_active_at
        return session

    def load(self):
        data = super().load()
        if data and self._read_expiry is not None:
            # Used now: push the idle deadline on, once it lags by more than a minute.
            now = clock.as_datetime(clock.now())
            self.modified = (
                self.modified
                or (self.get_expiry_date(data=data) - self._read_expiry).total_seconds() > _REFRESH_SECONDS
                or self._read_last_active is None
                or now - self._read_last_active > timedelta(seconds=_REFRESH_SECONDS)
            )
        return data

    def get_expiry_date(self, *, data=None, **kwargs) -> datetime:
        """12 hours after the login, or SESSION_IDLE_SECONDS from now, whichever comes first."""
        now = clock.now()
        data = self._get_session() if data is None else data
        expiry = data.get(_STARTED_KEY, now) + settings.SESSION_COOKIE_AGE
        if settings.SESSION_IDLE_SECONDS:
            expiry = min(expiry, now + settings.SESSION_IDLE_SECONDS)
        return clock.as_datetime(expiry)

    def get_expiry_age(self, **kwargs) -> int:
        return max(0, int((self.get_expiry_date() - clock.as_datetime(clock.now())).total_seconds()))

    def exists(self, session_key):
        return super().exists(stored_key(session_key))

    @classmethod
    def clear_expired(cls):
        cls.get_model_class().objects.filter(expire_date__lt=clock.as_datetime(clock.now())).delete()

    def delete(self, session_key=None):
        # One DELETE: Django's reads the row first. Every login and second factor rotates a key.
        session_key = session_key or self.session_key
        if session_key is not None:
            self.model.objects.filter(session_key=stored_key(session_key)).delete()

    def create_model_instance(self, data):
        data.setdefault(_STARTED_KEY, clock.now())
        session = super().create_model_instance(data)
        session.session_key = stored_key(session.session_key)
        session.user_id = session_state.account_id(data)
        session.full = session_state.is_full(data)
        session.last_active_at = clock.as_datetime(clock.now())
        return session

    def _describe_new(self, session) -> None:
        """The columns a new row gets once: its public id, its start, and its client."""
        session.public_id = secrets.token_urlsafe(16)
        session.created_at = session.last_active_at
        request = self.request() if self.request is not None else None
        if request is not None:
            session.ip = client_address(request)
            session.user_agent = request.headers.get("User-Agent", "")[:_USER_AGENT_LENGTH]

    def _get_new_session_key(self):
        while True:
            key = new_key()
            if not self.exists(key):
                return key

    def cycle_key(self):
        data, key = self._session, self.session_key
        self.create()
        self._session_cache = data
        # The row read moves to the new key when the response saves the session; until then the
        # old key is the session's, as it was. A key whose row was never read has none to move.
        self._moved_from = key if self._read_expiry is not None else None

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
        if self._moved_from is not None and not must_create:
            return self._move()
        must_create = must_create or self._unsaved_key
        session = self.create_model_instance(self._get_session(no_load=must_create))
        if must_create:
            self._describe_new(session)
        using = router.db_for_write(self.model, instance=session)
        for _ in range(_KEY_DRAWS):
            try:
                with transaction.atomic(using=using):
                    if must_create:
                        session.save(force_insert=True, using=using)
                    else:
                        session.save(force_update=True, using=using, update_fields=_REFRESHED)
            except IntegrityError as error:
                if not self._unsaved_key:
                    raise CreateError from error
                self._session_key = new_key()  # a key in use: draw another
                session.session_key = stored_key(self._session_key)
                continue
            except DatabaseError as error:
                raise UpdateError from error  # deleted meanwhile (Django's answer: SessionInterrupted)
            self._unsaved_key = False
            return
        raise CreateError

    def _move(self):
        """The session's row, read under the key cycle_key replaced, moved to the new key with its
        data: one UPDATE. No row to move means the session was ended while its request ran: it
        is not written again (Django's answer: SessionInterrupted)."""
        session = self.create_model_instance(self._get_session())
        changes = {name: getattr(session, name) for name in _REFRESHED}
        changes["user"] = changes.pop("user_id")
        using = router.db_for_write(self.model, instance=session)
        for _ in range(_KEY_DRAWS):
            try:
                with rows.savepoint(connections[using], using):  # within a transaction only
                    moved = rows.update(
                        self.model,
                        {"session_key": session.session_key, **changes},
                        ("session_key", "=", stored_key(self._moved_from)),
                    )
            except IntegrityError:
                self._session_key = new_key()  # a key in use: draw another
                session.session_key = stored_key(self._session_key)
                continue
            if not moved:
                raise UpdateError
            self._moved_from = None
            self._unsaved_key = False
            return
        raise CreateError


# What a save of an existing row writes: the rest was written once, with the row.
_REFRESHED = ("session_data", "expire_date", "user_id", "full", "last_active_at")
# What every request reads of its session's row: what it shows its owner is read by GET sessions.
_READ = ("session_data", "expire_date", "user_id", "last_active_at")


def _refused(name: str):
    async def refuse(self, *args, **kwargs):
        raise NotImplementedError(
            f"SessionStore.{name}: this session store is synchronous only; Django's async session "
            "methods would not write the session's account"
        )

    return refuse


for _name in (
    "aload",
    "_aget_session_from_db",
    "aexists",
    "acreate",
    "acreate_model_instance",
    "asave",
    "adelete",
    "acycle_key",
    "aflush",
    "aget_expiry_date",
    "aget_expiry_age",
):
    setattr(SessionStore, _name, _refused(_name))
