"""Slow clients. gunicorn gives a request a thread from its first byte until its last header:
connections that send their headers a byte at a time hold every thread, and /healthz waits
behind them. With docs/nginx.conf in front (Debian's nginx, as the README deploys it) nginx
holds them, and the service answers at once. gunicorn itself refuses requests larger than the
API needs.

gunicorn runs one worker of 4 threads, production's per core. (With two, how the connections
fall between them varies from run to run, and a worker left with a free thread answers: an
attacker just opens more.) SLOW_CLIENTS connections, more than its threads, send a byte every
half second for TRICKLE_SECONDS at most.
"""

import contextlib
import re
import socket
import threading
import time

import pytest
import requests

from tests.helpers import PASSWORD
from tests.support import nginx as nginx_process
from tests.support.http_client import fresh_email, session_from
from tests.support.server import Server, drop_database, free_port, serving

pytestmark = pytest.mark.e2e

SLOW_CLIENTS = 20
TRICKLE_SECONDS = 8
# Shorter than the trickle: the slow clients are still sending when it runs out.
NO_ANSWER_WITHIN = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("server"), workers=1, threads=4) as server:
        yield server


@pytest.fixture(scope="module")
def nginx(tmp_path_factory, server):
    nginx_process.require()
    proxy = nginx_process.Nginx(tmp_path_factory.mktemp("nginx"), upstream_port=server.port).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@contextlib.contextmanager
def slow_clients(port: int):
    """SLOW_CLIENTS connections to `port`, each sending a request's headers a byte every half
    second and never finishing them; closed after TRICKLE_SECONDS or on leaving the block."""
    connections = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(SLOW_CLIENTS)]
    for connection in connections:
        connection.settimeout(None)  # blocking: `still_sending` peeks without waiting
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    stop = threading.Event()

    def trickle():
        deadline = time.monotonic() + TRICKLE_SECONDS
        while not stop.wait(0.5) and time.monotonic() < deadline:
            for connection in connections:
                with contextlib.suppress(OSError):  # the server may have closed it
                    connection.send(b"a")

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        time.sleep(0.5)  # for the server to take them up
        yield connections
    finally:
        stop.set()
        sender.join()
        for connection in connections:
            connection.close()


def still_sending(connection: socket.socket) -> bool:
    """Whether the server is still waiting for this connection's headers: no answer, not closed."""
    try:
        connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def test_against_gunicorn_alone_slow_clients_hold_every_thread(server):
    with slow_clients(server.port) as connections:
        with pytest.raises(requests.Timeout):
            requests.get(server.url + "/healthz", timeout=NO_ANSWER_WITHIN)
        assert all(still_sending(connection) for connection in connections)
    assert requests.get(server.url + "/healthz", timeout=30).status_code == 200


def test_through_nginx_the_service_answers_while_slow_clients_send(server, nginx):
    with slow_clients(nginx.port) as connections:
        response = requests.get(nginx.url + "/healthz", timeout=30)
        assert all(still_sending(connection) for connection in connections)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_through_nginx_the_request_id_is_nginxs_not_the_clients(server, nginx):
    # The service keeps a sane X-Request-ID from its proxy; nginx names each request itself.
    ids = [
        requests.get(nginx.url + "/healthz", headers={"X-Request-ID": "chosen-by-client"}, timeout=30).headers[
            "X-Request-ID"
        ]
        for _ in range(2)
    ]
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids), ids
    assert ids[0] != ids[1]


@pytest.mark.parametrize("meta_key", ["HTTP_X_REAL_IP", "HTTP_X_FORWARDED_FOR"])
def test_through_nginx_the_headers_a_client_sends_do_not_name_it(tmp_path, meta_key):
    """The README's proxy settings with the README's nginx: nginx replaces the X-Real-IP a
    client sends and appends the client to its X-Forwarded-For, so naming another client on
    every request leaves the registration limit in force. The client connects from 127.0.0.2:
    127.0.0.1 is nginx's own address, a trusted proxy."""
    nginx_process.require()
    server = Server(tmp_path, env={"RATELIMIT_IP_META_KEY": meta_key, "TWOFA_REGISTER_RATE": "3/hour"})
    proxy = None
    client = session_from("127.0.0.2")
    try:
        proxy = nginx_process.Nginx(tmp_path, upstream_port=server.start().port).start()
        statuses = [
            client.post(
                proxy.url + "/api/auth/register",
                json={"email": fresh_email("nginx"), "name": "E2E", "password": PASSWORD},
                headers={"X-Real-IP": f"198.18.0.{n}", "X-Forwarded-For": f"198.18.1.{n}"},
                timeout=60,
            ).status_code
            for n in range(1, 5)
        ]
    finally:
        if proxy is not None:
            proxy.stop()
        server.stop()
        drop_database(server.env["DATABASE_URL"])
    assert statuses == [201, 201, 201, 429]


@pytest.mark.parametrize(
    "request_of_size, within, beyond, refusal",
    [
        (lambda size: ("/healthz?pad=" + "a" * size, {}), 1900, 2100, 414),
        (lambda size: ("/healthz", {f"X-Extra-{n}": "1" for n in range(size)}), 40, 51, 431),
        (lambda size: ("/healthz", {"X-Large": "a" * size}), 4000, 4100, 431),
    ],
    ids=["request-line", "header-count", "header-size"],
)
def test_gunicorn_refuses_requests_larger_than_the_api_needs(server, request_of_size, within, beyond, refusal):
    def status(size: int) -> int:
        path, headers = request_of_size(size)
        return requests.get(server.url + path, headers=headers, timeout=30).status_code

    assert (status(within), status(beyond)) == (200, refusal)


def test_through_nginx_a_body_over_the_limit_is_413_in_the_apis_envelope(nginx):
    body = '{"email": "' + "a" * 16 * 1024 + '"}'
    response = requests.post(
        nginx.url + "/api/auth/login", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 413
    assert response.json() == {"status": "fail", "message": "Request body is too large"}


def test_through_nginx_a_service_that_is_down_is_503_in_the_apis_envelope(tmp_path):
    nginx_process.require()
    proxy = nginx_process.Nginx(tmp_path, upstream_port=free_port()).start()
    try:
        response = requests.get(proxy.url + "/healthz", timeout=30)
    finally:
        proxy.stop()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["status"] == "fail"
