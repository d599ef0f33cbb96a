"""A real server's log (gunicorn, the service's handlers): quiet, without secrets, unforgeable. A
Host header not in ALLOWED_HOSTS is one warning line without a traceback, the access log writes no
query string, and a newline a client sends cannot start a line of its own."""

from urllib.parse import quote

import pytest
import requests

from tests.helpers import BAD_HOST, FORGED, LOGIN, forged_lines
from tests.support.server import serving

pytestmark = pytest.mark.e2e


def test_server_log_has_no_traceback_for_a_bad_host_and_no_query_string(tmp_path):
    with serving(tmp_path, env={"GUNICORN_ACCESS_LOG": "-"}) as server:
        response = requests.get(server.url + "/healthz", headers={"Host": "evil.example"}, timeout=30)
        assert response.status_code == 400
        bad_host_request = response.headers["X-Request-ID"]
        response = requests.get(server.url + "/healthz?secret=hunter2", timeout=30)
        assert response.status_code == 200
    log = server.log.read_text()  # whole: the server has stopped
    assert "Traceback" not in log
    assert [line for line in log.split("\n") if BAD_HOST in line] == [
        f"WARNING django.security.DisallowedHost [req={bad_host_request}]: {BAD_HOST}. You may need to add 'evil.example' to ALLOWED_HOSTS."
    ]
    assert '"GET /healthz HTTP/1.1" 200' in log
    assert "hunter2" not in log


def test_newline_in_a_login_email_or_a_path_cannot_forge_a_log_line(tmp_path):
    with serving(tmp_path, env={"GUNICORN_ACCESS_LOG": "-"}) as server:
        email = f"mallory@example.com\n{FORGED}"
        response = requests.post(server.url + LOGIN, json={"email": email, "password": "x"}, timeout=30)
        assert response.status_code == 400
        response = requests.get(server.url + "/healthz%0A" + quote(FORGED), timeout=30)
        assert response.status_code == 404
    log = server.log.read_text()  # whole: the server has stopped
    assert f"security event login_failed email=mallory@example.com\\n{FORGED}" in log
    assert forged_lines(log) == []
