"""The API over real HTTP, for end-to-end tests: an account, its session, its second factor;
clients from other addresses; requests released at the same moment."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pyotp
import requests
from requests.adapters import HTTPAdapter

from tests import helpers
from tests.helpers import PASSWORD


def fresh_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


class Account:
    """One person driving the API with their own cookie jar, as a browser would."""

    def __init__(self, base_url: str, email: str | None = None):
        self.api = base_url + "/api/auth/"
        self.email = email or fresh_email()
        self.http = requests.Session()
        self.secret = None

    def post(self, path: str, body: dict | None = None, http: requests.Session | None = None):
        return (http or self.http).post(self.api + path, json=body or {}, timeout=60)

    def register(self):
        return self.post("register", {"email": self.email, "name": "E2E", "password": PASSWORD})

    def login(self, http: requests.Session | None = None):
        return self.post("login", {"email": self.email, "password": PASSWORD}, http=http)

    def enrol(self) -> str:
        """Register, log in and switch 2FA on; returns the secret."""
        assert self.register().status_code == 201
        assert self.login().status_code == 200
        self.secret = self.post("otp/generate").json()["base32"]
        assert self.post("otp/verify", {"token": pyotp.TOTP(self.secret).now()}).status_code == 200
        return self.secret

    def pending_session(self) -> requests.Session:
        """A new browser whose login is pending its second factor. A new connection per request:
        tests make many and use them later than the server keeps an idle connection (2 s), and a
        request sent just as the server closes one fails."""
        http = requests.Session()
        http.headers["Connection"] = "close"
        assert self.login(http=http).status_code == 200
        return http

    def next_code(self) -> str:
        return helpers.next_code(self.secret)


class _FromAddress(HTTPAdapter):
    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


def session_from(address: str) -> requests.Session:
    """A browser whose connections leave from `address`, one of 127.0.0.0/8 (all local on
    Linux): to the server, another client than 127.0.0.1."""
    http = requests.Session()
    http.mount("http://", _FromAddress(address))
    return http


def race(calls, timeout: float = 60) -> list:
    """Run every zero-argument call in its own thread, all released at the same moment."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait(timeout=timeout)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))
