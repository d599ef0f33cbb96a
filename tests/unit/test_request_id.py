"""Request ids: a proxy's X-Request-ID is kept when it is sane and replaced otherwise, a new one is
made when there is none, and every log record of a request names it ("-" outside requests).
Over Django's test client: tests/api/test_request_id.py; over HTTP: tests/e2e/test_request_id.py."""

import logging
import re

import pytest
from django.conf import settings

from otp_app import logs
from otp_app.middleware import request_id_for

NEW_ID = re.compile(r"[0-9a-f]{32}")  # a uuid4 in hex


@pytest.mark.parametrize(
    "incoming",
    [
        pytest.param("0f8fad5bd9cb469fa16570867728950e", id="uuid-hex"),
        pytest.param("0f8fad5b-d9cb-469f-a165-70867728950e", id="uuid"),
        pytest.param("5d2c1b3a9f8e7d6c5b4a39281706f5e4", id="nginx-request-id"),
        pytest.param("req_1.2:3-x", id="punctuation"),
        pytest.param("a", id="one-character"),
        pytest.param("x" * 128, id="128-characters"),
    ],
)
def test_a_sane_incoming_request_id_is_kept(incoming):
    assert request_id_for(incoming) == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("abc\ndef", id="newline"),
        pytest.param("abc\r\nSet-Cookie: sessionid=x", id="header-injection"),
        pytest.param("abc\n", id="trailing-newline"),
        pytest.param("x" * 129, id="129-characters"),
        pytest.param("x" * 500, id="500-characters"),
        pytest.param('abc"def', id="double-quote"),
        pytest.param("abc'def", id="single-quote"),
        pytest.param("abc def", id="space"),
        pytest.param("<script>", id="markup"),
        pytest.param("abc]: forged", id="bracket"),
        pytest.param("zoë", id="non-ascii"),
        pytest.param("abc\x1b[31m", id="terminal-escape"),
    ],
)
def test_an_absent_or_insane_request_id_is_replaced_by_a_new_one(incoming):
    made = request_id_for(incoming)
    assert NEW_ID.fullmatch(made)
    assert made != incoming


def test_each_new_request_id_is_different():
    assert len({request_id_for(None) for _ in range(100)}) == 100


def record() -> logging.LogRecord:
    return logging.LogRecord("otp_app.security", logging.INFO, __file__, 1, "message", (), None)


def test_a_record_outside_requests_has_the_request_id_dash():
    line = record()
    assert logs.RequestIdFilter().filter(line)
    assert line.request_id == "-"


def test_a_record_of_a_request_has_its_request_id():
    token = logs.request_id.set("req-1")
    try:
        line = record()
        logs.RequestIdFilter().filter(line)
    finally:
        logs.request_id.reset(token)
    assert line.request_id == "req-1"


def test_a_record_that_names_its_request_id_keeps_it():
    line = record()
    line.request_id = "from-the-response"
    token = logs.request_id.set("req-1")
    try:
        logs.RequestIdFilter().filter(line)
    finally:
        logs.request_id.reset(token)
    assert line.request_id == "from-the-response"


def test_the_service_log_handlers_give_records_their_request_id():
    if settings.LOG_FORMAT != "text":
        pytest.skip("for the text format (JSON lines: tests/unit/test_json_logs.py)")
    [console] = [handler for handler in logging.root.handlers if not type(handler).__module__.startswith("_pytest")]
    assert any(isinstance(each, logs.RequestIdFilter) for each in console.filters)
    line = record()
    console.filter(line)
    assert console.format(line) == "INFO otp_app.security [req=-]: message"
