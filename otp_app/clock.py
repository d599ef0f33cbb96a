"""The one clock behind every 2FA rule (time steps, lockouts, pending logins).

Tests move it through the `clock` fixture; nothing else in the app reads the wall clock for
these rules, so a moved clock moves all of them together.
"""

import time
from datetime import UTC, datetime


def now() -> float:
    return time.time()


def as_datetime(moment: float) -> datetime:
    """A time of this clock as the aware datetime the database stores."""
    return datetime.fromtimestamp(moment, tz=UTC)
