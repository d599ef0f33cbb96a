"""Request ids over HTTP, from a real gunicorn: every answer of the service carries X-Request-ID,
the proxy's when it is sane, else a new one; an insane one is never echoed; the access log names
each request by the id of its answer. Its rules: tests/unit/test_request_id.py."""

import re
import socket

import pytest
import requests

from tests.helpers import LOGIN, ME
from tests.support.server import serving

pytestmark = pytest.mark.e2e

NEW_ID = re.compile(r"[0-9a-f]{32}")  # a uuid4 in hex
FORGED_LINE = "INFO otp_app.security: forged"


def raw_get(port: int, header: bytes) -> bytes:
    """The status line and headers of the answer to GET /healthz with `header` sent as is
    (requests refuses to send control characters)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + header + b"\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer.split(b"\r\n\r\n", 1)[0]


# (method, path, headers, status): an answer of each kind.
ANSWERS = [
    pytest.param("GET", "/healthz", {}, 200, id="200"),
    pytest.param("GET", "/healthz", {"Host": "evil.example"}, 400, id="400-bad-host"),
    pytest.param("GET", ME, {}, 401, id="401"),
    pytest.param("GET", "/api/auth/no-such-path", {}, 404, id="404"),
    pytest.param("GET", LOGIN, {}, 405, id="405"),
    pytest.param("POST", LOGIN, {"Content-Type": "application/json; charset=bz2"}, 415, id="415"),
]


@pytest.mark.parametrize("method, path, headers, status", ANSWERS)
def test_over_http_every_answer_keeps_a_sane_request_id(live_server_url, method, path, headers, status):
    headers = {**headers, "X-Request-ID": "proxy-42"}
    response = requests.request(method, live_server_url + path, headers=headers, data=b"{}", timeout=30)
    assert response.status_code == status
    assert response.headers["X-Request-ID"] == "proxy-42"


@pytest.mark.parametrize("method, path, headers, status", ANSWERS)
def test_over_http_every_answer_without_a_request_id_gets_a_new_one(live_server_url, method, path, headers, status):
    response = requests.request(method, live_server_url + path, headers=headers, data=b"{}", timeout=30)
    assert response.status_code == status
    assert NEW_ID.fullmatch(response.headers["X-Request-ID"])


@pytest.mark.parametrize(
    "incoming",
    [
        pytest.param("x" * 500, id="500-characters"),
        pytest.param('abc"def', id="double-quote"),
        pytest.param("abc'def", id="single-quote"),
        pytest.param("<script>alert(1)</script>", id="markup"),
        pytest.param("abc def]: forged", id="space-and-bracket"),
    ],
)
def test_over_http_an_insane_request_id_is_replaced_never_echoed(live_server_url, incoming):
    response = requests.get(live_server_url + "/healthz", headers={"X-Request-ID": incoming}, timeout=30)
    assert response.status_code == 200
    assert NEW_ID.fullmatch(response.headers["X-Request-ID"])
    assert incoming not in str(response.headers)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(f"X-Request-ID: abc\n{FORGED_LINE}".encode(), id="newline"),
        pytest.param(f"X-Request-ID: abc\r{FORGED_LINE}".encode(), id="carriage-return"),
        pytest.param(f"X-Request-ID: abc\r\n {FORGED_LINE}".encode(), id="line-folding"),
        pytest.param(f"X-Request-ID: abc\x1b{FORGED_LINE}".encode(), id="terminal-escape"),
    ],
)
def test_over_http_a_request_id_with_a_control_character_is_never_echoed(live_server_url, header):
    answer = raw_get(int(live_server_url.rsplit(":", 1)[1]), header)
    assert b"forged" not in answer
    status = answer.split(b"\r\n", 1)[0]
    # gunicorn refuses such a header itself; were it let through, the service would replace it.
    if status != b"HTTP/1.1 400 Bad Request":
        [request_id] = re.findall(rb"\r\nX-Request-ID: ([^\r\n]*)", answer)
        assert NEW_ID.fullmatch(request_id.decode())


def test_access_log_names_each_request_by_the_request_id_of_its_answer(tmp_path):
    with serving(tmp_path, env={"GUNICORN_ACCESS_LOG": "-"}) as server:
        kept = requests.get(server.url + "/healthz", headers={"X-Request-ID": "proxy-42"}, timeout=30)
        made = requests.get(server.url + "/api/auth/no-such-path", timeout=30)
        replaced = requests.get(server.url + "/healthz", headers={"X-Request-ID": 'a"b'}, timeout=30)
    log = server.log.read_text()  # whole: the server has stopped
    assert kept.headers["X-Request-ID"] == "proxy-42"
    assert '127.0.0.1 [req=proxy-42] "GET /healthz HTTP/1.1" 200 ' in log
    assert f'127.0.0.1 [req={made.headers["X-Request-ID"]}] "GET /api/auth/no-such-path HTTP/1.1" 404 ' in log
    assert f'127.0.0.1 [req={replaced.headers["X-Request-ID"]}] "GET /healthz HTTP/1.1" 200 ' in log
    assert 'a"b' not in log
