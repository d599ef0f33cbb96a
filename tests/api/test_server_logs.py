"""Quiet logs: a Host header not in ALLOWED_HOSTS is one warning line without a traceback (a real
server's log: tests/e2e/test_server_logs.py)."""

import logging

from rest_framework.test import APIClient

from tests.helpers import BAD_HOST


def test_bad_host_is_one_warning_without_traceback(db, caplog):
    response = APIClient().get("/healthz", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.json() == {"status": "fail", "message": "Bad request"}
    [record] = [record for record in caplog.records if record.name == "django.security.DisallowedHost"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(BAD_HOST)
    assert record.exc_info is None and record.exc_text is None
