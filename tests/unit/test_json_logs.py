"""LOG_FORMAT=json: one JSON object per line (time, level, logger, message, request_id and the
record's own fields), which stays one line and UTF-8 whatever a client put in it; gunicorn's
access lines name the request id, method, path, status, duration and address, and nothing else
of the request. A real server's log: tests/e2e/test_json_logs.py."""

import json
import logging
import sys
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from otp_app import logs
from otp_app.logs import JsonFormatter, JsonGunicornLogger
from tests.helpers import FORGED, manage

CONTROL_AND_INVISIBLE = ["\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\u202e", "\ud800"]


def record(message: str, *args, exc_info=None, **extra) -> logging.LogRecord:
    line = logging.LogRecord("otp_app.security", logging.INFO, __file__, 1, message, args, exc_info)
    line.__dict__.update(extra)
    return line


def formatted(line: logging.LogRecord) -> str:
    logs.RequestIdFilter().filter(line)
    return JsonFormatter().format(line)


def test_a_line_is_a_json_object_with_time_level_logger_message_and_request_id():
    line = json.loads(formatted(record("name=%s", "Zoë Ångström 山田", created=1_800_000_000.25)))
    assert line == {
        "time": "2027-01-15T08:00:00.250+00:00",
        "level": "INFO",
        "logger": "otp_app.security",
        "message": "name=Zoë Ångström 山田",
        "request_id": "-",
    }


def test_a_line_of_a_request_has_its_request_id():
    token = logs.request_id.set("req-1")
    try:
        line = json.loads(formatted(record("message")))
    finally:
        logs.request_id.reset(token)
    assert line["request_id"] == "req-1"


def test_a_security_event_has_its_kind_email_address_and_detail_as_fields():
    fields = logs.fields(kind="login_failed", email="ann@example.com", address="203.0.113.7", detail={"via": "admin"})
    line = json.loads(formatted(record("security event login_failed", **fields)))
    assert line["kind"] == "login_failed"
    assert line["email"] == "ann@example.com"
    assert line["address"] == "203.0.113.7"
    assert line["detail"] == {"via": "admin"}


def test_fields_cannot_replace_the_line_of_its_own():
    fields = logs.fields(level="CRITICAL", logger="forged", message="forged", request_id="forged", time="forged")
    line = json.loads(formatted(record("message", **fields)))
    assert "forged" not in line.values()


@pytest.mark.parametrize("unsafe", CONTROL_AND_INVISIBLE, ids=[repr(unsafe) for unsafe in CONTROL_AND_INVISIBLE])
def test_a_control_or_invisible_character_is_escaped_and_read_back_as_it_was(unsafe):
    email = f"mallory@example.com{unsafe}{FORGED}"
    text = formatted(record("security event login_failed email=%s", email, **logs.fields(email=email)))
    assert unsafe not in text
    assert len(text.splitlines()) == 1
    text.encode("utf-8")  # a lone surrogate would not encode: the line would be lost
    line = json.loads(text)
    assert line["message"] == f"security event login_failed email={email}"
    assert line["email"] == email


def test_a_traceback_is_a_field_of_the_one_line():
    try:
        raise ValueError("broken")
    except ValueError:
        text = formatted(record("failed for %s", f"mallory\n{FORGED}", exc_info=sys.exc_info()))
    assert len(text.splitlines()) == 1
    line = json.loads(text)
    assert line["message"] == f"failed for mallory\n{FORGED}"
    assert line["exc_info"].startswith("Traceback (most recent call last):")
    assert line["exc_info"].endswith("ValueError: broken")


def test_settings_log_json_lines_with_log_format_json():
    script = (
        "import logging; [console] = logging.root.handlers; "
        "print(type(console.formatter).__name__, [type(each).__name__ for each in console.filters])"
    )
    result = manage("shell", "-c", script, LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "JsonFormatter ['RequestIdFilter']"


def test_an_unknown_log_format_stops_the_service_at_start():
    result = manage("check", LOG_FORMAT="xml")
    assert result.returncode != 0
    assert "LOG_FORMAT must be text or json" in result.stderr


def gunicorn_json_log() -> JsonGunicornLogger:
    config = Config()
    config.set("accesslog", "-")
    return JsonGunicornLogger(config)


def closed(gunicorn_log: JsonGunicornLogger) -> None:
    for log in (gunicorn_log.error_log, gunicorn_log.access_log):
        for handler in list(log.handlers):
            log.removeHandler(handler)


def test_gunicorn_access_line_has_request_id_method_path_status_duration_and_address_only(capsys):
    gunicorn_log = gunicorn_json_log()
    response = SimpleNamespace(
        status="200 OK",
        sent=123,
        headers=[("Content-Type", "application/json"), ("X-Request-ID", "req-1"), ("Set-Cookie", "sessionid=s3cr3t")],
    )
    request = SimpleNamespace(headers=[("COOKIE", "sessionid=s3cr3t"), ("USER-AGENT", "Agent/1.0")])
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/api/auth/otp/validate?token=123456",
        "PATH_INFO": "/api/auth/otp/validate",
        "QUERY_STRING": "token=123456",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_COOKIE": "sessionid=s3cr3t",
        "HTTP_USER_AGENT": "Agent/1.0",
    }
    try:
        gunicorn_log.access(response, request, environ, timedelta(milliseconds=12, microseconds=345))
    finally:
        closed(gunicorn_log)
    [text] = capsys.readouterr().out.splitlines()
    line = json.loads(text)
    assert line.pop("time")
    assert line == {
        "level": "INFO",
        "logger": "gunicorn.access",
        "message": "POST /api/auth/otp/validate 200",
        "request_id": "req-1",
        "method": "POST",
        "path": "/api/auth/otp/validate",
        "status": 200,
        "duration_ms": 12.345,
        "remote_address": "203.0.113.7",
    }
    assert "123456" not in text and "s3cr3t" not in text and "Agent" not in text


def test_gunicorn_error_lines_are_json_lines_with_control_characters_escaped(capsys):
    gunicorn_log = gunicorn_json_log()
    try:
        gunicorn_log.error("Error handling request %s", f"/healthz\n{FORGED}")
    finally:
        closed(gunicorn_log)
    [text] = capsys.readouterr().err.splitlines()
    line = json.loads(text)
    assert (line["level"], line["logger"], line["request_id"]) == ("ERROR", "gunicorn.error", "-")
    assert line["message"] == f"Error handling request /healthz\n{FORGED}"
