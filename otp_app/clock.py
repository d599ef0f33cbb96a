"""The one clock behind every 2FA rule (time steps, lockouts, pending logins).

Tests move it through the `clock` fixture; nothing else in the app reads the wall clock for
these rules, so a moved clock moves all of them together.
"""

import time


def now() -> float:
    return time.time()
