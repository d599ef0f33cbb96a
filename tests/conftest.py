"""Shared fixtures: users in every 2FA state, clients in every session state, and a clock.

Unit tests call services directly; API tests use DRF's test client; end-to-end tests use
`live_server_url` (a real gunicorn process, see tests/support/server.py). All share these users;
what they share besides fixtures is in tests/helpers.py. At the end of a run, a summary of the
tests skipped for want of a tool (Chromium, nginx, Node.js...) says how to get it.
"""

from collections import Counter

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from otp_app import clock as app_clock
from otp_app import totp
from tests.helpers import Clock, code_for, login, make_user, validate
from tests.support import prerequisites
from tests.support.server import serving

START = 1_800_000_000.0  # a TOTP step boundary (divisible by 30)


@pytest.fixture
def clock(monkeypatch):
    moved = Clock(START)
    monkeypatch.setattr(app_clock, "now", moved)
    return moved


@pytest.fixture(autouse=True)
def _fresh_cache(request):
    """Throttle counters live in the cache: every test starts with none (the cache may be a
    database table, so only tests that use the database can touch it)."""
    uses_db = [name for name in ("transactional_db", "db") if name in request.fixturenames]
    if not uses_db:
        yield
        return
    request.getfixturevalue(uses_db[0])
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def no_idle_limit(settings):
    """Sessions that outlive hours without use: for tests of other rules over long spans. List
    it before the fixtures that log in, so their sessions are made without an idle limit."""
    settings.SESSION_IDLE_SECONDS = 0


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def user(db):
    return make_user()


@pytest.fixture
def other_user(db):
    return make_user("bob@example.com", "Bob")


@pytest.fixture
def user_with_2fa(db):
    return make_user(otp_enabled=True, otp_verified=True, otp_secret=totp.new_secret())


@pytest.fixture
def superuser(db):
    return make_user("root@example.com", "Root", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_with_2fa(db):
    return make_user(
        "staff@example.com",
        "Staff",
        is_staff=True,
        is_superuser=True,
        otp_enabled=True,
        otp_verified=True,
        otp_secret=totp.new_secret(),
    )


@pytest.fixture
def logged_in_client(user, clock):
    """A full session for `user` (no 2FA)."""
    client = APIClient()
    assert login(client, user.email).status_code == 200
    return client


@pytest.fixture
def pending_client(user_with_2fa, clock):
    """A pending session for `user_with_2fa`: password proven, code not yet."""
    client = APIClient()
    assert login(client, user_with_2fa.email).status_code == 200
    return client


@pytest.fixture
def full_2fa_client(user_with_2fa, pending_client, clock):
    """A full session for `user_with_2fa`: password and code proven."""
    response = validate(pending_client, code_for(user_with_2fa.otp_secret, clock))
    assert response.status_code == 200, response.content
    return pending_client


@pytest.fixture(scope="session")
def live_server_url(tmp_path_factory):
    """The URL of a real gunicorn process (2 workers) over its own SQLite file."""
    with serving(tmp_path_factory.mktemp("server")) as server:
        yield server.url


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    """After all pytest writes but its last line (the skip reasons of `-ra` among them): which
    tests were skipped for want of a tool, and how to get it. In CI they fail instead."""
    result = yield
    wanting = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        if isinstance(report.longrepr, tuple):  # (file, line, "Skipped: <reason>")
            need = prerequisites.need_of(report.longrepr[2].removeprefix("Skipped: "))
            if need is not None:
                wanting[need] += 1
    if wanting:
        terminalreporter.section("tests skipped for want of a tool", yellow=True, bold=True)
        for need, count in wanting.items():
            terminalreporter.line(f"{count} skipped because {need.absent}: {need.tests}.")
            terminalreporter.line(f"    To run them: {need.remedy}")
        terminalreporter.line("In CI (CI=true) these tests fail instead; .ci/run installs what they need.")
    return result
