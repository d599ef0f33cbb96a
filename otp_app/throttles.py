"""Limits on password guessing, per account and per client address, and on registrations per
client address; each reads the address from `client_address.limit_key`.

Every attempt is counted before its password is hashed and taken back when the password was
right, where every process and instance of the service sees the same counts: in Redis when the
cache is Redis (its atomic increment), else in the database's `LoginAttempts` table, one
statement per count. Keys and windows are django-ratelimit's.
"""

import functools
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router
from django_ratelimit import ALL
from django_ratelimit import core as ratelimit
from rest_framework.throttling import ScopedRateThrottle

from . import challenges, metrics
from .client_address import limit_key
from .models import LoginAttempts, normalise_email


@dataclass
class TooManyPasswordFailures(Exception):
    retry_after: int


def _limits(email: str):
    """(group, key function, rate) of each limit, as django-ratelimit's `get_usage` takes them."""
    account = normalise_email(email)
    return (
        ("login-failures-account", lambda group, request: account, settings.TWOFA_LOGIN_FAILURES_PER_ACCOUNT),
        (
            "login-failures-address",
            lambda group, request: limit_key(request),
            settings.TWOFA_LOGIN_FAILURES_PER_ADDRESS,
        ),
    )


class RegisterThrottle(ScopedRateThrottle):
    """Registrations per client address (the view's scope, `register`: TWOFA_REGISTER_RATE)."""

    def get_ident(self, request) -> str:
        return limit_key(request)

    def get_cache_key(self, request, view) -> str:
        # Per address for a logged-in client too: counted per account instead, each account
        # registered would open a fresh allowance.
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class PasskeySignInThrottle(RegisterThrottle):
    """Passkey sign-ins started per client address (scope `passkey-sign-in`:
    TWOFA_PASSKEY_SIGN_IN_RATE). Each one stores a session; sessions already logged in, or
    pending, are not limited."""

    def allow_request(self, request, view):
        return request.auth is not None or super().allow_request(request, view)


class PasskeyAnswerThrottle(PasskeySignInThrottle):
    """Passkey answers from an anonymous session that holds no challenge, counted in the same
    allowance as the sign-ins started: such an answer can never be accepted, yet each is
    recorded (passkey_refused). An answer to a challenge was counted when the challenge was
    issued, and takes it: one answer per challenge."""

    def allow_request(self, request, view):
        return challenges.KEY in request.session or super().allow_request(request, view)


def count_password_attempt(request, *, email: str) -> "Attempt":
    """Count a login attempt against both limits before any password is hashed; refuse it
    while the account or the address is over its limit.

    Counting comes first, by one atomic increment (Redis's, or one upsert in `LoginAttempts`:
    `_increment` below), so concurrent guesses cannot all pass a check that none of them has been
    counted in yet: of attempts racing at a count of 9 of 10, one gets a hash. A right password
    takes its attempt back (`Attempt.forgive`): only failures use the limits up.
    Unknown emails are counted like known ones, so the limit says nothing about who exists.
    """
    counters = _counters(request, email)
    # Already over: refused from one read, with no write (a flood against a limit costs little).
    counts = counts_of(list(counters))
    for cache_key, counter in counters.items():
        if counts.get(cache_key, 0) >= counter.limit:
            raise _refused(counter)
    attempt = Attempt(counted={})
    for cache_key, counter in counters.items():
        attempt.counted[cache_key] = counter
        if _increment(cache_key, counter, 1) > counter.limit:
            attempt.forgive()  # lost the race for the last attempt left: this one is not made
            raise _refused(counter)
    return attempt


def _refused(counter: "_Counter") -> TooManyPasswordFailures:
    metrics.count_throttled_login()
    return TooManyPasswordFailures(retry_after=counter.retry_after())


@dataclass
class Attempt:
    """A counted login attempt."""

    counted: dict

    def forgive(self) -> None:
        """Take the attempt back (the password was right), in the windows it was counted in."""
        for cache_key, counter in self.counted.items():
            _increment(cache_key, counter, -1)


@dataclass(frozen=True)
class _Counter:
    limit: int
    period: int
    window: int  # when the counter's window ends (django-ratelimit's clock)

    def retry_after(self) -> int:
        # django-ratelimit's window still counts during its last second: "+ 1" makes a client
        # that waits exactly Retry-After land in the next window.
        return max(1, self.window - int(ratelimit.time.time()) + 1)


def _counters(request, email: str) -> dict[str, _Counter]:
    """Each limit's counter, under the cache key django-ratelimit counts it in."""
    counters = {}
    for group, key, rate in _limits(email):
        value = key(group, request)
        limit, period = ratelimit._split_rate(rate)
        window = ratelimit._get_window(value, period)
        counters[ratelimit._make_cache_key(group, window, rate, value, ALL)] = _Counter(limit, period, window)
    return counters


def counts_of(cache_keys: list[str]) -> dict[str, int]:
    """The current count of each counter that has one."""
    if not _in_database():
        return cache.get_many(cache_keys)
    return _table().counts(cache_keys)


def _in_database() -> bool:
    # Django's database cache cannot increment in one statement (it reads, then writes, counting
    # the whole table before each write): the database counts in a table of its own instead.
    return isinstance(caches["default"], DatabaseCache)


def _increment(cache_key: str, counter: _Counter, delta: int) -> int:
    """Add `delta` to a counter (created for its window when counting up); counting up, the new count."""
    if _in_database():
        return _table().add(cache_key, counter, delta)
    expires_in = counter.period + ratelimit.EXPIRATION_FUDGE
    if delta > 0:
        cache.add(cache_key, 0, expires_in)
    try:
        return cache.incr(cache_key, delta)
    except ValueError:  # expired meanwhile: its window is over
        return 0


# One in this many counts up also deletes the rows whose windows are over (0: none does).
PRUNE_ONE_IN = 1000


def _table() -> "_Table":
    return _Table.of(connections[router.db_for_write(LoginAttempts)])


class _Table:
    """The counters in `LoginAttempts`, each change one statement: an upsert counting up, a
    guarded UPDATE counting down, never below 0. A key names one window (django-ratelimit's),
    so a row is never counted in again once its window is over; it waits to be pruned.
    Its statements are built once per connection (`of`), as rows.py's are."""

    @classmethod
    @functools.lru_cache(maxsize=64)  # keyed by the connection object: each thread has its own
    def of(cls, connection) -> "_Table":
        return cls(connection)

    def __init__(self, connection):
        self.connection = connection
        self.expires_field = LoginAttempts._meta.get_field("expires_at")
        quote = connection.ops.quote_name
        table, key, attempts, expires = (
            quote(name) for name in (LoginAttempts._meta.db_table, "key", "attempts", "expires_at")
        )
        self.select = f"SELECT {key}, {attempts} FROM {table} WHERE {key} IN "
        self.take_back = f"UPDATE {table} SET {attempts} = {attempts} - %s WHERE {key} = %s AND {attempts} >= %s"
        self.count_up = (
            f"INSERT INTO {table} ({key}, {attempts}, {expires}) VALUES (%s, %s, %s) "
            f"ON CONFLICT ({key}) DO UPDATE SET {attempts} = {table}.{attempts} + %s "
            f"RETURNING {attempts}"
        )
        self.prune = f"DELETE FROM {table} WHERE {expires} <= %s"

    def counts(self, cache_keys: list[str]) -> dict[str, int]:
        with self.connection.cursor() as cursor:
            cursor.execute(f"{self.select}({', '.join(['%s'] * len(cache_keys))})", cache_keys)
            return dict(cursor.fetchall())

    def add(self, cache_key: str, counter: _Counter, delta: int) -> int:
        with self.connection.cursor() as cursor:
            if delta < 0:
                cursor.execute(self.take_back, [-delta, cache_key, -delta])
                return 0  # nobody reads a count taken back
            expires = self._moment(counter.window + ratelimit.EXPIRATION_FUDGE)
            cursor.execute(self.count_up, [cache_key, delta, expires, delta])
            count = cursor.fetchone()[0]
            if PRUNE_ONE_IN and secrets.randbelow(PRUNE_ONE_IN) == 0:
                cursor.execute(self.prune, [self._moment(ratelimit.time.time())])
        return count

    def _moment(self, timestamp: float):
        return self.expires_field.get_db_prep_value(datetime.fromtimestamp(timestamp, UTC), self.connection)
