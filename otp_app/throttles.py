"""Limits on password guessing, per account and per client address.

Only failures are counted, in the shared cache (the database by default, Redis when
configured), so every process and instance of the service sees the same counts. The counting
itself is django-ratelimit's; the choice of keys and rates is ours.
"""
from dataclasses import dataclass

from django.conf import settings
from django_ratelimit.core import get_usage

from .models import normalise_email


@dataclass
class TooManyPasswordFailures(Exception):
    retry_after: int


def _limits(email: str):
    account = normalise_email(email)
    return (
        ("login-failures-account", lambda group, request: account, settings.TWOFA_LOGIN_FAILURES_PER_ACCOUNT),
        ("login-failures-address", "ip", settings.TWOFA_LOGIN_FAILURES_PER_ADDRESS),
    )


def check_password_attempts(request, *, email: str) -> None:
    """Refuse before any password is hashed while the account or the address is over its limit.

    Unknown emails are counted like known ones, so the limit says nothing about who exists.
    """
    for group, key, rate in _limits(email):
        usage = get_usage(request, group=group, key=key, rate=rate, increment=False)
        # A cache that cannot answer gives count 0 of limit 0: refused, never unthrottled.
        if usage is not None and usage["count"] >= usage["limit"]:
            # django-ratelimit's window still counts during its last second: "+ 1" makes a
            # client that waits exactly Retry-After land in the next window.
            raise TooManyPasswordFailures(retry_after=max(1, usage["time_left"] + 1))


def count_password_failure(request, *, email: str) -> None:
    for group, key, rate in _limits(email):
        get_usage(request, group=group, key=key, rate=rate, increment=True)
