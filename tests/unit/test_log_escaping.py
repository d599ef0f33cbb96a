"""Log lines a client cannot forge: every message is written on one line, control characters
escaped, by the service's handlers and by gunicorn's error and access logs; tracebacks stay as
they are. A real server's log: tests/e2e/test_server_logs.py."""

import logging
import sys

import pytest
from gunicorn.config import Config

from otp_app.logs import EscapingFormatter, GunicornLogger
from tests.helpers import FORGED, forged_lines


def formatted(message: str, *args, exc_info=None) -> str:
    record = logging.LogRecord("otp_app.security", logging.INFO, __file__, 1, message, args, exc_info)
    return EscapingFormatter("%(levelname)s %(name)s: %(message)s").format(record)


@pytest.mark.parametrize(
    "unsafe, escaped",
    [
        pytest.param("\n", r"\n", id="line-feed"),
        pytest.param("\r", r"\r", id="carriage-return"),
        pytest.param("\t", r"\t", id="tab"),
        pytest.param("\x00", r"\x00", id="nul"),
        pytest.param("\x1b", r"\x1b", id="escape"),
        pytest.param("\x7f", r"\x7f", id="delete"),
        pytest.param("\x85", r"\x85", id="next-line"),
        pytest.param("\u2028", r"\u2028", id="line-separator"),
        pytest.param("\u2029", r"\u2029", id="paragraph-separator"),
        pytest.param("\u202e", r"\u202e", id="right-to-left-override"),
        pytest.param("\ud800", r"\ud800", id="lone-surrogate"),
    ],
)
def test_formatter_escapes_each_control_character_in_the_message(unsafe, escaped):
    line = formatted("security event %s email=%s", "login_failed", f"mallory@example.com{unsafe}{FORGED}")
    assert line == f"INFO otp_app.security: security event login_failed email=mallory@example.com{escaped}{FORGED}"


def test_formatter_leaves_letters_of_every_script_as_they_are():
    assert formatted("name=%s", "Zoë Ångström 山田 Ελένη") == "INFO otp_app.security: name=Zoë Ångström 山田 Ελένη"


def test_formatter_keeps_the_traceback_as_it_is():
    try:
        raise ValueError("broken")
    except ValueError:
        line = formatted("failed for %s", f"mallory\n{FORGED}", exc_info=sys.exc_info())
    first, *traceback = line.split("\n")
    assert first == f"INFO otp_app.security: failed for mallory\\n{FORGED}"
    assert traceback[0] == "Traceback (most recent call last):"
    assert traceback[-1] == "ValueError: broken"


def test_every_handler_of_the_service_escapes():
    loggers = [logging.root, *logging.root.manager.loggerDict.values()]
    handlers = [
        handler
        for logger in loggers
        for handler in getattr(logger, "handlers", [])  # a PlaceHolder has none
        if not isinstance(handler, logging.NullHandler)  # libraries' (urllib3): they write nothing
        and not type(handler).__module__.startswith("_pytest")  # pytest's own capture
        # pyasn1's debug printer (under py_webauthn) prints only once a program turns pyasn1's
        # debugging on (pyasn1.debug.setLogger), which the service never does.
        and not (logger is logging.getLogger("pyasn1") and handler.level == logging.DEBUG)
    ]
    assert handlers
    assert [handler for handler in handlers if not isinstance(handler.formatter, EscapingFormatter)] == []


def test_gunicorn_error_and_access_logs_escape(capsys):
    config = Config()
    config.set("accesslog", "-")
    gunicorn_log = GunicornLogger(config)
    try:
        gunicorn_log.error("Error handling request %s", f"/healthz\n{FORGED}")
        gunicorn_log.access_log.info("%s", f'127.0.0.1 "GET /healthz\n{FORGED} HTTP/1.1" 404')
    finally:
        for log in (gunicorn_log.error_log, gunicorn_log.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
    written = capsys.readouterr()
    assert f"/healthz\\n{FORGED}" in written.err
    assert f"/healthz\\n{FORGED}" in written.out
    assert forged_lines(written.err + written.out) == []
