"""Requests are UTF-8: any other charset in the Content-Type is a 415 JSON answer.

Django decodes with whatever codec Python knows by the charset's name, and DRF's JSON parser
with it: `charset=bz2` would decompress a body of a few hundred bytes, well under the size
limit, into hundreds of megabytes, and a query string with `charset=rot13` was a 500 before any
middleware ran. Every other charset is refused before anything is decoded, on the API and off it
(the admin's login form); the JSON parser decodes UTF-8 itself as well. A real server refuses
them too: tests/e2e/test_request_charset.py.
"""

import bz2
import codecs
import io
import json
from wsgiref.util import setup_testing_defaults

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from rest_framework import exceptions
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from tests.helpers import LOGIN, PASSWORD, UTF8_ONLY


def login_body(email: str) -> bytes:
    return json.dumps({"email": email, "password": PASSWORD}).encode()


def assert_refused_as_not_utf8(response) -> None:
    assert response.status_code == 415, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"status": "fail", "message": UTF8_ONLY}


# How a client would send a login body in each charset: compressed, encoded, or as it is.
REFUSED = [
    pytest.param("bz2", lambda body: bz2.compress(body), id="bz2"),
    pytest.param("zlib", lambda body: codecs.encode(body, "zlib"), id="zlib"),
    pytest.param("base64", lambda body: codecs.encode(body, "base64"), id="base64"),
    pytest.param("hex", lambda body: codecs.encode(body, "hex"), id="hex"),
    pytest.param("rot13", lambda body: codecs.encode(body.decode(), "rot13").encode(), id="rot13"),
    pytest.param("utf-16", lambda body: body.decode().encode("utf-16"), id="utf-16"),
    pytest.param("latin-1", lambda body: body, id="latin-1"),
    pytest.param("x-no-such-codec", lambda body: body, id="unknown-name"),
    pytest.param("", lambda body: body, id="empty"),
]


@pytest.mark.parametrize("charset, encode", REFUSED)
def test_json_body_in_another_charset_than_utf8_is_refused_with_415(user, charset, encode):
    raw = encode(login_body(user.email))
    response = APIClient().generic("POST", LOGIN, raw, content_type=f"application/json; charset={charset}")
    assert_refused_as_not_utf8(response)


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("application/json", id="no-charset"),
        pytest.param("application/json; charset=utf-8", id="utf-8"),
        pytest.param("application/json; charset=UTF8", id="UTF8"),
        pytest.param('application/json; charset="Utf-8"', id="quoted-Utf-8"),
    ],
)
def test_json_body_in_utf8_is_accepted(user, clock, content_type):
    raw = login_body(user.email)
    response = APIClient().generic("POST", LOGIN, raw, content_type=content_type)
    assert response.status_code == 200, response.content
    assert response.json()["user"]["email"] == user.email


@pytest.mark.parametrize(
    "content_type, raw",
    [
        pytest.param(
            "application/x-www-form-urlencoded; charset=bz2",
            bz2.compress(b"username=a%40example.com&password=x"),
            id="bz2",
        ),
        pytest.param(
            "application/x-www-form-urlencoded; charset=rot13", b"hfreanzr=n%40rknzcyr.pbz&cnffjbeq=k", id="rot13"
        ),
    ],
)
def test_admin_login_form_in_another_charset_than_utf8_is_refused_with_415(db, content_type, raw):
    response = APIClient().post("/admin/login/", raw, content_type=content_type)
    assert_refused_as_not_utf8(response)


@pytest.fixture
def json_parser():
    """The API's one parser, as DRF loads it."""
    [parser_class] = api_settings.DEFAULT_PARSER_CLASSES
    return parser_class()


def test_json_parser_decodes_utf8_whatever_encoding_django_took_from_the_charset(json_parser):
    compressed = bz2.compress(b'{"email": "a@example.com"}')
    with pytest.raises(exceptions.ParseError):
        json_parser.parse(io.BytesIO(compressed), "application/json", {"encoding": "bz2"})


def test_json_parser_refuses_a_charset_other_than_utf8(json_parser):
    compressed = bz2.compress(b'{"email": "a@example.com"}')
    with pytest.raises(exceptions.UnsupportedMediaType):
        json_parser.parse(io.BytesIO(compressed), "application/json; charset=bz2", {"encoding": "bz2"})


# What servers run: the entry points of otp_project/wsgi.py and asgi.py, whose requests are built
# before any middleware (Django's test client builds its own).
def call_wsgi(path: str, query: str, content_type: str) -> tuple[int, bytes]:
    from otp_project.wsgi import application

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "CONTENT_TYPE": content_type}
    setup_testing_defaults(environ)
    started = []
    chunks = application(environ, lambda status, headers: started.append(status))
    try:
        body = b"".join(chunks)
    finally:
        chunks.close()
    return int(started[0].split()[0]), body


@async_to_sync
async def call_asgi(path: str, query: str, content_type: str) -> tuple[int, bytes]:
    from otp_project.asgi import application

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"content-type", content_type.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    server = ApplicationCommunicator(application, scope)
    await server.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await server.receive_output(timeout=30)
    body = await server.receive_output(timeout=30)
    return start["status"], body["body"]


@pytest.mark.parametrize("call", [call_wsgi, call_asgi], ids=["wsgi", "asgi"])
@pytest.mark.parametrize("charset", ["rot13", "bz2", "hex"])
def test_query_string_with_a_charset_other_than_utf8_is_refused_by_the_servers_entry_points(db, call, charset):
    status, body = call("/admin/login/", "next=/admin/", f"text/plain; charset={charset}")
    assert status == 415, body[:300]
    assert json.loads(body) == {"status": "fail", "message": UTF8_ONLY}
