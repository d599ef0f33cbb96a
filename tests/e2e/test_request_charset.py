"""Requests are UTF-8, over real HTTP: a body that `charset=bz2` would decompress to 64 MiB, and a
query string with `charset=rot13`, are 415 JSON answers from gunicorn too (the rule, and the
same through the test client: tests/api/test_request_charset.py)."""

import bz2

import pytest
import requests

from tests.helpers import LOGIN, UTF8_ONLY

pytestmark = pytest.mark.e2e


def bz2_bomb(*, head: bytes, tail: bytes, mebibytes: int) -> bytes:
    """`head`, `mebibytes` MiB of "a", `tail`, compressed by bz2 to a few hundred bytes."""
    compressor = bz2.BZ2Compressor(9)
    chunk = b"a" * (1 << 20)
    parts = [compressor.compress(head), *(compressor.compress(chunk) for _ in range(mebibytes))]
    return b"".join([*parts, compressor.compress(tail), compressor.flush()])


@pytest.mark.parametrize(
    "path, content_type, head, tail",
    [
        pytest.param(LOGIN, "application/json", b'{"email": "a@example.com", "password": "', b'"}', id="api-login"),
        pytest.param(
            "/admin/login/",
            "application/x-www-form-urlencoded",
            b"username=a%40example.com&password=",
            b"",
            id="admin-login",
        ),
    ],
)
def test_compressed_body_with_charset_bz2_is_refused_over_http(live_server_url, path, content_type, head, tail):
    bomb = bz2_bomb(head=head, tail=tail, mebibytes=64)
    assert len(bomb) < 1024
    response = requests.post(
        live_server_url + path, data=bomb, headers={"Content-Type": f"{content_type}; charset=bz2"}, timeout=60
    )
    assert_http_refused_as_not_utf8(response)


def test_query_string_with_charset_rot13_is_refused_over_http(live_server_url):
    headers = {"Content-Type": "text/plain; charset=rot13"}
    response = requests.get(live_server_url + "/admin/login/?next=/admin/", headers=headers, timeout=60)
    assert_http_refused_as_not_utf8(response)


def assert_http_refused_as_not_utf8(response: requests.Response) -> None:
    assert response.status_code == 415, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"status": "fail", "message": UTF8_ONLY}
