"""What some tests need beyond Python: Chromium, nginx, Node.js, PgBouncer, PostgreSQL and Redis,
free ports.

Without one, its tests are skipped on a developer's machine and fail in CI (`CI` set), which
installs everything (.ci/run). The end of a run lists what was skipped and how to get it
(`pytest_terminal_summary` in tests/conftest.py).
"""

import os
from dataclasses import dataclass
from typing import NoReturn

import pytest


@dataclass(frozen=True)
class Need:
    absent: str  # what is the matter, as a clause: "Chromium is not installed"
    tests: str  # the tests that need it
    remedy: str  # how to get it


CHROMIUM = Need("Chromium is not installed", "the browser tests (tests/browser/)", "apt-get install chromium")
FREE_PORTS = Need(
    "port 8000 or 3000 is in use",
    "the browser tests that serve the API where the React app expects it (tests/browser/)",
    "stop what listens there (`make run` serves on 8000)",
)
NGINX = Need(
    "nginx is not installed",
    "the tests of nginx in front of gunicorn (tests/e2e/test_slow_clients.py)",
    "apt-get install nginx-light",
)
NODE = Need(
    "Node.js is not installed",
    "the runs of the Postman collection (tests/e2e/test_postman.py)",
    "apt-get install nodejs npm (newman then comes with `npm ci --prefix postman`)",
)
PGBOUNCER = Need(
    "PgBouncer is not installed",
    "the two-instance tests through PgBouncer (tests/e2e/test_scale_out.py, on PostgreSQL)",
    "apt-get install pgbouncer (the tests start their own; the system service may stay stopped)",
)
POSTGRES_AND_REDIS = Need(
    "PostgreSQL or Redis is not listening on 127.0.0.1",
    "the outage tests (tests/e2e/test_faults.py)",
    "apt-get install postgresql redis-server, and start them as .ci/run does",
)

_skipped: dict[str, Need] = {}  # the reason of each skip for want of something -> that something


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def missing(need: Need, reason: str) -> NoReturn:
    """Skip the calling test (or fixture) for want of `need`; in CI, fail it."""
    if in_ci():
        pytest.fail(f"{reason}, and CI must run {need.tests}", pytrace=False)
    _skipped[reason] = need
    pytest.skip(reason)


def need_of(reason: str) -> Need | None:
    """What a skip with this reason was for want of, if it was for want of something."""
    return _skipped.get(reason)
