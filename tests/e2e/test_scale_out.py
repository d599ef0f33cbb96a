"""Two instances of the service over one database and one cache act as one service.

On the SQLite run they share the SQLite file and its cache table; on the PostgreSQL run, the
PostgreSQL database and Redis, once connected to it directly and once through PgBouncer in
transaction pooling mode.
"""

import os

import pytest
import requests

from tests.helpers import wrong_code_now
from tests.support import pgbouncer
from tests.support.authenticator import SoftwareAuthenticator
from tests.support.http_client import Account, race
from tests.support.server import Server, drop_database, is_postgres

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["direct", "pgbouncer"])
def two_instances(request, tmp_path_factory):
    through_pgbouncer = request.param == "pgbouncer"
    if through_pgbouncer:
        if not is_postgres(os.environ.get("DATABASE_URL", "")):
            pytest.skip("runs on the PostgreSQL leg")
        pgbouncer.require()
    first = Server(tmp_path_factory.mktemp("first"))
    database_url = first.env["DATABASE_URL"]
    # Instances of one service share its keys: sessions are signed with SECRET_KEY, secrets
    # encrypted with TWOFA_ENCRYPTION_KEYS.
    second = Server(
        tmp_path_factory.mktemp("second"),
        database_url=database_url,
        env={key: first.env[key] for key in ("SECRET_KEY", "TWOFA_ENCRYPTION_KEYS")},
    )
    bouncer = None
    try:
        if through_pgbouncer:
            # The instances' threads, and the migrations, take turns on its few server connections.
            bouncer = pgbouncer.PgBouncer(tmp_path_factory.mktemp("pgbouncer"), upstream=database_url).start()
            for server in (first, second):
                server.env.update(DATABASE_URL=bouncer.url_of(database_url), DATABASE_TRANSACTION_POOLING="true")
        first.start()
        # Behind one host name in production: here the pages of a passkey are the first's.
        second.env["TWOFA_WEBAUTHN_ORIGINS"] = first.url
        second.start(migrate=False)
        yield first.url, second.url
    finally:
        first.stop()
        second.stop()
        if bouncer:
            bouncer.stop()
        drop_database(database_url)


def test_a_session_created_on_one_instance_works_on_the_other(two_instances):
    one, other = two_instances
    account = Account(one)
    assert account.register().status_code == 201
    assert account.login().status_code == 200
    response = account.http.get(other + "/api/auth/me", timeout=30)
    assert response.status_code == 200
    assert response.json()["user"]["email"] == account.email


def test_wrong_codes_spread_over_both_instances_lock_the_account_on_both(two_instances):
    one, other = two_instances
    account = Account(one)
    secret = account.enrol()
    pending = account.pending_session()
    wrong = wrong_code_now(secret)
    for attempt in range(5):
        base = (one, other)[attempt % 2]
        response = pending.post(base + "/api/auth/otp/validate", json={"token": wrong}, timeout=30)
        assert response.status_code == 400
    for base in (one, other):
        response = pending.post(base + "/api/auth/otp/validate", json={"token": account.next_code()}, timeout=30)
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) > 0
    assert secret  # the right code was refused only because of the lock


def test_a_code_accepted_on_one_instance_is_refused_on_the_other(two_instances):
    one, other = two_instances
    account = Account(one)
    account.enrol()
    code = account.next_code()
    first, second = account.pending_session(), account.pending_session()
    assert first.post(one + "/api/auth/otp/validate", json={"token": code}, timeout=30).status_code == 200
    response = second.post(other + "/api/auth/otp/validate", json={"token": code}, timeout=30)
    assert response.status_code == 400
    assert response.json()["message"] == "Token is invalid or user doesn't exist"


def test_failed_logins_on_both_instances_count_towards_one_limit(two_instances):
    one, other = two_instances
    account = Account(one)
    assert account.register().status_code == 201
    for attempt in range(10):  # TWOFA_LOGIN_FAILURES_PER_ACCOUNT defaults to 10 per 15 minutes
        base = (one, other)[attempt % 2]
        response = requests.post(
            base + "/api/auth/login", json={"email": account.email, "password": "wrong password"}, timeout=30
        )
        assert response.status_code == 400
    for base in (one, other):
        response = requests.post(
            base + "/api/auth/login", json={"email": account.email, "password": "wrong password"}, timeout=30
        )
        assert response.status_code == 429


def _with_passkey(one: str, other: str) -> tuple[Account, SoftwareAuthenticator]:
    """An account whose passkey was asked for on one instance and stored by the other."""
    account, passkey = Account(one), SoftwareAuthenticator(origin=one)
    assert account.register().status_code == 201
    assert account.login().status_code == 200
    options = account.post("passkeys/registration/options").json()["publicKey"]
    answer = {"credential": passkey.register(options)}
    assert account.http.post(other + "/api/auth/passkeys/registration", json=answer, timeout=30).status_code == 201
    return account, passkey


def test_a_passkey_challenge_issued_by_one_instance_is_answered_on_the_other(two_instances):
    one, other = two_instances
    account, passkey = _with_passkey(one, other)
    browser = account.pending_session()
    options = account.post("passkeys/authentication/options", http=browser).json()["publicKey"]

    response = browser.post(
        other + "/api/auth/passkeys/authentication", json={"credential": passkey.authenticate(options)}, timeout=30
    )

    assert response.status_code == 200, response.text
    assert browser.get(one + "/api/auth/me", timeout=30).status_code == 200


def test_one_passkey_answer_raced_to_both_instances_is_accepted_once(two_instances):
    one, other = two_instances
    account, passkey = _with_passkey(one, other)
    browser = account.pending_session()
    options = account.post("passkeys/authentication/options", http=browser).json()["publicKey"]
    answer = {"credential": passkey.authenticate(options)}

    def send(url: str) -> int:
        copy = requests.Session()
        copy.cookies.update(browser.cookies)
        return copy.post(url + "/api/auth/passkeys/authentication", json=answer, timeout=60).status_code

    # Four, not more: each refusal counts as a wrong code, and five would lock the account.
    statuses = race([lambda url=url: send(url) for url in [one, other] * 2])

    assert sorted(statuses) == [200, 400, 400, 400]
