"""Shared fixtures: users in every 2FA state, clients in every session state, and a clock.

Unit tests call services directly; API tests use DRF's test client; end-to-end tests use
`live_server_url` (a real gunicorn process, see tests/server.py). All share these users and codes.
"""
import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from otp_app import clock as app_clock
from otp_app import crypto, totp
from otp_app.models import UserModel

PASSWORD = "correct horse battery staple"
START = 1_800_000_000.0  # a TOTP step boundary (divisible by 30)


class Clock:
    """The app's clock, under the test's control. `tick` moves it; nothing sleeps."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds

    def step(self) -> int:
        return totp.step_at(self.now)


@pytest.fixture
def clock(monkeypatch):
    moved = Clock(START)
    monkeypatch.setattr(app_clock, "now", moved)
    return moved


def plain(secret: str) -> str:
    """The base32 secret of a stored (encrypted) one; a base32 secret stays as it is."""
    return crypto.decrypt(secret) if secret.startswith(FERNET_PREFIX) else secret


FERNET_PREFIX = "gAAAAA"  # every Fernet token starts so (version byte and timestamp)


def code_for(secret: str, clock: Clock, *, steps_ahead: int = 0) -> str:
    """The code of `secret` (base32, or as stored on the user row) at the clock's step."""
    return totp.code_at(secret=plain(secret), step=clock.step() + steps_ahead)


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


def make_user(email="ann@example.com", name="Ann", **fields) -> UserModel:
    """A user; base32 secrets given in `otp_secret`/`pending_secret` are stored encrypted, as the app stores them."""
    for field in ("otp_secret", "pending_secret"):
        if fields.get(field) and not fields[field].startswith(FERNET_PREFIX):
            fields[field] = crypto.encrypt(fields[field])
    return UserModel.objects.create_user(email, name, PASSWORD, **fields)


@pytest.fixture
def user(db):
    return make_user()


@pytest.fixture
def other_user(db):
    return make_user("bob@example.com", "Bob")


@pytest.fixture
def user_with_2fa(db):
    return make_user(otp_enabled=True, otp_verified=True, otp_secret=totp.new_secret())


def login(client: APIClient, email: str, password: str = PASSWORD):
    return client.post("/api/auth/login", {"email": email, "password": password}, format="json")


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
    response = pending_client.post(
        "/api/auth/otp/validate", {"token": code_for(user_with_2fa.otp_secret, clock)}, format="json"
    )
    assert response.status_code == 200, response.content
    return pending_client


@pytest.fixture(scope="session")
def live_server_url(tmp_path_factory):
    """The URL of a real gunicorn process (2 workers) over its own SQLite file."""
    from .server import Server, drop_database

    server = Server(tmp_path_factory.mktemp("server"))
    try:
        yield server.start().url
    finally:
        server.stop()
        drop_database(server.env["DATABASE_URL"])
