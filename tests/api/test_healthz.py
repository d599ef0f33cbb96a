"""GET /healthz: a tiny JSON answer for load balancers, that touches no session or throttle."""

import pytest


@pytest.mark.django_db
def test_healthz_answers_200_json_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert set(response.json()["checks"].values()) == {"ok"}


@pytest.mark.django_db
def test_healthz_sets_no_cookie_and_is_never_throttled(client, settings):
    settings.TWOFA_REGISTER_RATE = "1/hour"
    for _ in range(20):
        response = client.get("/healthz")
        assert response.status_code == 200
        assert not response.cookies


# The 503 side, with a database really taken away, is in tests/e2e/test_faults.py.
