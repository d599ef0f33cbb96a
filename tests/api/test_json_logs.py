"""The service's log lines name their request: with LOG_FORMAT=json each is a JSON object whose
request_id is the X-Request-ID of the answer (security events with their kind, email, address and
detail as fields), and the text format writes it as [req=...]. Its formatter: tests/unit/
test_json_logs.py; a real server's log: tests/e2e/test_json_logs.py."""

import io
import json
import logging
import logging.config

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from otp_app import logs
from tests.helpers import FORGED, forged_lines, login

AGENT = "JsonLogsTest/1.0"
ADDRESS = "203.0.113.7"


@pytest.fixture
def written():
    """What the service's handler writes, in each format of the settings: `written(format)` is
    the text written so far in that format."""
    streams = {}
    handlers = []
    for log_format in ("text", "json"):
        configurator = logging.config.DictConfigurator(settings.LOGGING)
        handler = logging.StreamHandler(streams.setdefault(log_format, io.StringIO()))
        handler.setFormatter(configurator.configure_formatter(dict(settings.LOGGING["formatters"][log_format])))
        handler.addFilter(logs.RequestIdFilter())
        logging.root.addHandler(handler)
        handlers.append(handler)
    yield lambda log_format: streams[log_format].getvalue()
    for handler in handlers:
        logging.root.removeHandler(handler)


def security_lines(text: str) -> list[dict]:
    return [line for line in map(json.loads, text.splitlines()) if line["logger"] == "otp_app.security"]


def test_json_lines_of_a_request_carry_its_request_id(user, written):
    response = login(APIClient(HTTP_USER_AGENT=AGENT, REMOTE_ADDR=ADDRESS), user.email, "not the password")
    assert response.status_code == 400
    [event] = security_lines(written("json"))
    assert event["request_id"] == response["X-Request-ID"]
    assert (event["kind"], event["email"], event["address"], event["detail"]) == (
        "login_failed",
        "ann@example.com",
        ADDRESS,
        {},
    )
    assert event["level"] == "INFO" and event["time"]


def test_json_lines_carry_the_proxys_request_id(user, written):
    response = login(APIClient(HTTP_X_REQUEST_ID="proxy-42"), user.email)
    assert response.status_code == 200
    [event] = security_lines(written("json"))
    assert (event["kind"], event["request_id"], event["detail"]) == (
        "login_succeeded",
        "proxy-42",
        {"second_factor": "off"},
    )


def test_every_json_line_parses_and_none_is_forged(db, written):
    email = f"mallory@example.com\n{FORGED}"
    response = APIClient().post("/api/auth/login", {"email": email, "password": "x"}, format="json")
    assert response.status_code == 400
    lines = [json.loads(text) for text in written("json").splitlines()]
    assert [line["email"] for line in lines if line["logger"] == "otp_app.security"] == [email]
    assert forged_lines(written("json")) == []


def test_text_lines_of_a_request_carry_its_request_id(user, written):
    response = login(APIClient(HTTP_X_REQUEST_ID="proxy-42", REMOTE_ADDR=ADDRESS), user.email)
    assert response.status_code == 200
    assert (
        "INFO otp_app.security [req=proxy-42]: security event login_succeeded email=ann@example.com "
        f"address={ADDRESS} detail={{'second_factor': 'off'}}"
    ) in written("text").splitlines()


def test_lines_outside_requests_have_the_request_id_dash(written):
    logging.getLogger("otp_app.security").info("outside")
    assert "INFO otp_app.security [req=-]: outside" in written("text").splitlines()
    [line] = [json.loads(text) for text in written("json").splitlines()]
    assert (line["message"], line["request_id"]) == ("outside", "-")
