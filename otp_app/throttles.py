"""Limits on password guessing, per account and per client address.

Only failures are counted, in the shared cache (the database by default, Redis when
configured), so every process and instance of the service sees the same counts. The counting
itself is django-ratelimit's; the choice of keys and rates is ours.
"""
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django_ratelimit import ALL
from django_ratelimit import core as ratelimit

from .models import normalise_email


@dataclass
class TooManyPasswordFailures(Exception):
    retry_after: int


def _limits(email: str):
    """(group, key function, rate) of each limit, as django-ratelimit's `get_usage` takes them."""
    account = normalise_email(email)
    return (
        ("login-failures-account", lambda group, request: account, settings.TWOFA_LOGIN_FAILURES_PER_ACCOUNT),
        ("login-failures-address", lambda group, request: ratelimit._get_ip(request), settings.TWOFA_LOGIN_FAILURES_PER_ADDRESS),
    )


def check_password_attempts(request, *, email: str) -> None:
    """Refuse before any password is hashed while the account or the address is over its limit.

    Unknown emails are counted like known ones, so the limit says nothing about who exists.
    Both counters are read with one `get_many`, under the keys django-ratelimit counts them in
    (`get_usage(increment=False)` would write each one with `cache.add` on every login).
    """
    counters = {}
    for group, key, rate in _limits(email):
        value = key(group, request)
        limit, period = ratelimit._split_rate(rate)
        window = ratelimit._get_window(value, period)
        counters[ratelimit._make_cache_key(group, window, rate, value, ALL)] = (limit, window)
    counts = cache.get_many(list(counters))
    for cache_key, (limit, window) in counters.items():
        if counts.get(cache_key, 0) >= limit:
            # django-ratelimit's window still counts during its last second: "+ 1" makes a
            # client that waits exactly Retry-After land in the next window.
            raise TooManyPasswordFailures(retry_after=max(1, window - int(ratelimit.time.time()) + 1))


def count_password_failure(request, *, email: str) -> None:
    for group, key, rate in _limits(email):
        ratelimit.get_usage(request, group=group, key=key, rate=rate, method=ALL, increment=True)
