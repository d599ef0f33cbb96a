"""A session ended through one instance of the service is refused at once by every other: ended
by its owner (DELETE sessions/<id>, POST sessions/end-others) or by a change of password. Two
gunicorn instances over one PostgreSQL database and Redis, directly and through PgBouncer (the
instances of tests/e2e/test_scale_out.py)."""

import os

import pytest
import requests

from tests.e2e import test_scale_out
from tests.helpers import PASSWORD
from tests.support.http_client import Account
from tests.support.server import is_postgres

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not is_postgres(os.environ.get("DATABASE_URL", "")), reason="runs on the PostgreSQL leg"),
]

NEW_PASSWORD = "Harbour-Violet-Compass-19?"
two_instances = test_scale_out.two_instances  # the fixture: (the first's URL, the second's)


def another_browser(account: Account) -> requests.Session:
    """A second browser of the account, logged in through the account's instance (a new
    connection per request, as Account.pending_session explains)."""
    http = requests.Session()
    http.headers["Connection"] = "close"
    assert account.login(http=http).status_code == 200
    return http


def me(http: requests.Session, base: str) -> int:
    return http.get(base + "/api/auth/me", timeout=30).status_code


def registered(base: str) -> Account:
    account = Account(base)
    assert account.register().status_code == 201
    assert account.login().status_code == 200
    return account


def test_a_session_deleted_through_one_instance_is_refused_at_once_by_the_other(two_instances):
    one, other = two_instances
    account = registered(one)
    phone = another_browser(account)
    assert me(phone, other) == 200  # known to the other instance before it ends
    sessions = account.http.get(one + "/api/auth/sessions", timeout=30).json()["sessions"]
    (phone_id,) = [session["id"] for session in sessions if not session["current"]]

    response = account.http.delete(f"{one}/api/auth/sessions/{phone_id}", timeout=30)

    assert response.json() == {"status": "success"}
    assert me(phone, other) == 401
    assert me(phone, one) == 401
    assert me(account.http, other) == 200


def test_sessions_ended_by_end_others_on_one_instance_are_refused_at_once_by_the_other(two_instances):
    one, other = two_instances
    account = Account(one)
    account.enrol()  # 2FA on: other browsers are pending until their code
    laptop = another_browser(account)
    assert laptop.post(one + "/api/auth/otp/validate", json={"token": account.next_code()}, timeout=30).ok
    waiting = account.pending_session()
    assert (me(laptop, other), me(waiting, other)) == (200, 403)

    response = account.post("sessions/end-others")

    assert response.json() == {"status": "success", "ended": 2}
    assert (me(laptop, other), me(waiting, other)) == (401, 401)
    assert me(account.http, other) == 200


def test_a_password_changed_on_one_instance_ends_the_other_sessions_at_once_on_the_other(two_instances):
    one, other = two_instances
    account = registered(one)
    phone = another_browser(account)
    assert me(phone, other) == 200

    response = account.post("password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD})

    assert response.json() == {"status": "success", "message": "Password changed"}
    assert me(phone, other) == 401
    assert me(account.http, other) == 200  # the session that changed it, under its new key
    login = {"email": account.email, "password": NEW_PASSWORD}
    assert requests.post(other + "/api/auth/login", json=login, timeout=30).status_code == 200
