"""Logs that stay quiet and keep secrets: a Host header not in ALLOWED_HOSTS is one warning line
without a traceback, and gunicorn's access log writes no query string."""
import logging

import pytest
import requests
from rest_framework.test import APIClient

from tests.helpers import BAD_HOST
from tests.support.server import serving


def test_bad_host_is_one_warning_without_traceback(db, caplog):
    response = APIClient().get("/healthz", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.json() == {"status": "fail", "message": "Bad request"}
    [record] = [record for record in caplog.records if record.name == "django.security.DisallowedHost"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(BAD_HOST)
    assert record.exc_info is None and record.exc_text is None


@pytest.mark.e2e
def test_server_log_has_no_traceback_for_a_bad_host_and_no_query_string(tmp_path):
    with serving(tmp_path, env={"GUNICORN_ACCESS_LOG": "-"}) as server:
        response = requests.get(server.url + "/healthz", headers={"Host": "evil.example"}, timeout=30)
        assert response.status_code == 400
        response = requests.get(server.url + "/healthz?secret=hunter2", timeout=30)
        assert response.status_code == 200
    log = server.log.read_text()  # whole: the server has stopped
    assert "Traceback" not in log
    assert [line for line in log.split("\n") if BAD_HOST in line] == [
        f"WARNING django.security.DisallowedHost: {BAD_HOST}. You may need to add 'evil.example' to ALLOWED_HOSTS."
    ]
    assert '"GET /healthz HTTP/1.1" 200' in log
    assert "hunter2" not in log
