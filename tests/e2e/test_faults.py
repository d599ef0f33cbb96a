"""Outages: without its database or Redis the service answers 503 JSON (never a 500 page, never
an unthrottled guess), and recovers by itself when they return.

The database or Redis is taken away through a TCP proxy the test cuts and restores; the real
services are untouched. These need the PostgreSQL and Redis of CI's machine.
"""

import socket
import time

import pytest
import requests

from tests.support import prerequisites
from tests.support.http_client import Account
from tests.support.server import Server, create_database, drop_database, free_port
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"


def _require(port: int, what: str) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        prerequisites.missing(prerequisites.POSTGRES_AND_REDIS, f"{what} is not listening on 127.0.0.1:{port}")


def _assert_unavailable(response: requests.Response) -> None:
    assert response.status_code == 503
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["status"] == "fail"
    assert isinstance(response.json()["message"], str)


def _wait_until_healthy(url: str, seconds: float = 20) -> int:
    deadline = time.monotonic() + seconds
    while True:
        status = requests.get(url + "/healthz", timeout=10).status_code
        if status == 200 or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


@pytest.fixture
def database_url():
    _require(5432, "PostgreSQL")
    url = create_database(POSTGRES, prefix="faults")
    yield url
    drop_database(url)


def _through(proxy: TcpProxy, url: str) -> str:
    return url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")


def test_database_outage_gives_503_json_and_the_service_recovers_by_itself(tmp_path, database_url):
    proxy = TcpProxy(5432).start()
    server = Server(tmp_path, database_url=_through(proxy, database_url), env={"CONN_MAX_AGE": "60"})
    try:
        server.start()
        account = Account(server.url)
        assert account.register().status_code == 201
        assert account.login().status_code == 200
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200

        proxy.stop()
        _assert_unavailable(account.login())
        _assert_unavailable(account.http.get(account.api + "me", timeout=30))
        health = requests.get(server.url + "/healthz", timeout=30)
        assert health.status_code == 503
        assert health.json()["checks"]["database"] == "unavailable"

        proxy.start()
        assert _wait_until_healthy(server.url) == 200
        assert account.login().status_code == 200
        assert account.http.get(account.api + "me", timeout=30).status_code == 200
    finally:
        server.stop()
        proxy.stop()


def test_an_instance_pointed_at_a_dead_database_port_answers_503_json(tmp_path):
    dead = free_port()
    server = Server(tmp_path, database_url=f"postgres://postgres@127.0.0.1:{dead}/nothing")
    try:
        server.start(migrate=False)
        _assert_unavailable(Account(server.url).register())
        _assert_unavailable(Account(server.url).login())
        assert requests.get(server.url + "/healthz", timeout=30).status_code == 503
    finally:
        server.stop()


def test_redis_outage_fails_closed_with_503_json_and_recovers(tmp_path, database_url):
    _require(6379, "Redis")
    proxy = TcpProxy(6379).start()
    server = Server(tmp_path, database_url=database_url, env={"REDIS_URL": f"redis://127.0.0.1:{proxy.port}/13"})
    try:
        server.start()
        account = Account(server.url)
        assert account.register().status_code == 201
        assert account.login().status_code == 200

        proxy.stop()
        # The failed-login counters cannot be read: the login is refused, not let through unthrottled.
        _assert_unavailable(account.login())
        # Sessions and locks live in the database: a logged-in person carries on.
        assert account.http.get(account.api + "me", timeout=30).status_code == 200
        health = requests.get(server.url + "/healthz", timeout=30)
        assert health.status_code == 503
        assert health.json()["checks"] == {"database": "ok", "cache": "unavailable"}

        proxy.start()
        assert _wait_until_healthy(server.url) == 200
        assert account.login().status_code == 200
    finally:
        server.stop()
        proxy.stop()
