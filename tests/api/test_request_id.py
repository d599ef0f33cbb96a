"""Every answer carries an X-Request-ID: the proxy's when it is sane, else a new one (an insane
one is never echoed), on successes and errors alike; the security events of a request store it.
Its rules: tests/unit/test_request_id.py; over HTTP: tests/e2e/test_request_id.py."""

import re

import pytest
from django.db import OperationalError
from django.test import RequestFactory
from rest_framework.test import APIClient

from otp_app import audit
from otp_app.models import SecurityEvent
from tests.helpers import LOGIN, ME, login

NEW_ID = re.compile(r"[0-9a-f]{32}")  # a uuid4 in hex


def outage(*args, **kwargs):
    raise OperationalError("the database is down")


def failure(*args, **kwargs):
    raise RuntimeError("a bug")


# (method, path, body, headers, status): an answer of each kind.
ANSWERS = [
    pytest.param("get", "/healthz", None, {}, 200, id="200"),
    pytest.param("post", LOGIN, {"email": "ann@example.com", "password": "wrong"}, {}, 400, id="400"),
    pytest.param("get", "/healthz", None, {"HTTP_HOST": "evil.example"}, 400, id="400-bad-host"),
    pytest.param("get", ME, None, {}, 401, id="401"),
    pytest.param("get", "/api/auth/no-such-path", None, {}, 404, id="404"),
    pytest.param("get", LOGIN, None, {}, 405, id="405"),
    pytest.param("post", LOGIN, "x", {"content_type": "text/plain; charset=bz2"}, 415, id="415"),
]


@pytest.mark.parametrize("method, path, body, headers, status", ANSWERS)
def test_every_answer_keeps_a_sane_request_id(db, method, path, body, headers, status):
    response = getattr(APIClient(), method)(
        path, body, format=None if "content_type" in headers else "json", HTTP_X_REQUEST_ID="proxy-42", **headers
    )
    assert response.status_code == status
    assert response["X-Request-ID"] == "proxy-42"


@pytest.mark.parametrize("method, path, body, headers, status", ANSWERS)
def test_every_answer_without_a_request_id_gets_a_new_one(db, method, path, body, headers, status):
    response = getattr(APIClient(), method)(path, body, format=None if "content_type" in headers else "json", **headers)
    assert response.status_code == status
    assert NEW_ID.fullmatch(response["X-Request-ID"])


def test_an_outage_answer_has_a_request_id(db, monkeypatch):
    monkeypatch.setattr(audit, "record_failed_login", outage)
    response = login(APIClient(HTTP_X_REQUEST_ID="proxy-42"), "ann@example.com", "wrong")
    assert response.status_code == 503
    assert response["X-Request-ID"] == "proxy-42"


def test_a_server_error_answer_has_a_request_id(db, monkeypatch):
    monkeypatch.setattr(audit, "record_failed_login", failure)
    client = APIClient(HTTP_X_REQUEST_ID="proxy-42", raise_request_exception=False)
    response = login(client, "ann@example.com", "wrong")
    assert response.status_code == 500
    assert response["X-Request-ID"] == "proxy-42"


@pytest.mark.parametrize(
    "incoming",
    [
        pytest.param("abc\nINFO otp_app.security: forged", id="newline"),
        pytest.param("abc\r\nSet-Cookie: sessionid=x", id="header-injection"),
        pytest.param("x" * 500, id="500-characters"),
        pytest.param('abc"def', id="double-quote"),
        pytest.param("abc'def", id="single-quote"),
        pytest.param("<script>alert(1)</script>", id="markup"),
    ],
)
def test_an_insane_request_id_is_replaced_never_echoed(db, incoming):
    response = APIClient().get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert response.status_code == 200
    assert NEW_ID.fullmatch(response["X-Request-ID"])
    assert incoming not in str(response.serialize_headers())


def test_each_request_without_an_id_gets_its_own(db):
    client = APIClient()
    assert len({client.get("/healthz")["X-Request-ID"] for _ in range(5)}) == 5


def test_security_events_store_the_request_id_of_their_request(user):
    response = login(APIClient(HTTP_X_REQUEST_ID="proxy-42"), user.email)
    assert response.status_code == 200
    failed = login(APIClient(), user.email, "not the password")
    assert failed.status_code == 400
    events = SecurityEvent.objects.order_by("pk")
    assert [(event.kind, event.request_id) for event in events] == [
        (SecurityEvent.Kind.LOGIN_SUCCEEDED, "proxy-42"),
        (SecurityEvent.Kind.LOGIN_FAILED, failed["X-Request-ID"]),
    ]


def test_a_security_event_recorded_outside_requests_has_no_request_id(user):
    event = audit.record(RequestFactory().get("/"), SecurityEvent.Kind.OTP_RESET_BY_ADMIN, user=user)
    assert SecurityEvent.objects.get(pk=event.pk).request_id == ""
