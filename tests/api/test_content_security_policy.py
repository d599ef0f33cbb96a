"""Every response carries a Content-Security-Policy: the strictest (load nothing, run nothing, be
framed by no one) on the API and everything else; the admin, Swagger UI and ReDoc get what they
need from this origin, scripts from files only. The browser tests show those pages work under it
(tests/browser/test_swagger.py, tests/browser/test_admin.py)."""

import pytest
from rest_framework.test import APIClient

from tests.helpers import LOGIN, ME, PASSWORD, REGISTER, login

NEW_ACCOUNT = {"email": "new@example.com", "name": "New", "password": PASSWORD}
STRICT = {
    "default-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'none'"],
    "frame-ancestors": ["'none'"],
}


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {name: sources for name, *sources in (part.split() for part in policy.split(";"))}


@pytest.mark.parametrize(
    "request_, status",
    [
        pytest.param(lambda client: client.post(REGISTER, NEW_ACCOUNT, format="json"), 201, id="api-created"),
        pytest.param(lambda client: login(client, "ann@example.com"), 200, id="api-success"),
        pytest.param(lambda client: login(client, "ann@example.com", "wrong password"), 400, id="api-error"),
        pytest.param(lambda client: client.get(ME), 401, id="api-no-session"),
        pytest.param(
            lambda client: client.post(LOGIN, b"{}", content_type="application/json; charset=bz2"),
            415,
            id="api-not-utf8",
        ),
        pytest.param(lambda client: client.get("/api/auth/no-such-endpoint"), 404, id="api-not-found"),
        pytest.param(lambda client: client.get("/no-such-page"), 404, id="not-found"),
        pytest.param(lambda client: client.get("/healthz"), 200, id="healthz"),
        pytest.param(lambda client: client.get("/healthz", HTTP_HOST="evil.example"), 400, id="bad-host"),
        pytest.param(lambda client: client.get("/swagger.json"), 200, id="schema-json"),
        pytest.param(lambda client: client.get("/swagger.yaml"), 200, id="schema-yaml"),
        pytest.param(lambda client: client.get("/static/admin/css/base.css"), 200, id="static-file"),
    ],
)
def test_every_response_but_the_pages_has_the_strictest_policy(user, clock, request_, status):
    response = request_(APIClient())
    assert response.status_code == status
    assert directives(response) == STRICT


@pytest.mark.parametrize("path", ["/swagger/", "/redoc/", "/admin/login/"])
def test_pages_run_only_scripts_of_this_origin(db, path):
    response = APIClient().get(path)
    assert response.status_code == 200
    policy = directives(response)
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
