"""Wrong passwords are throttled per account and per client address: over the limit every login
is 429 with Retry-After, refused before any password is hashed."""

from types import SimpleNamespace
from unittest import mock

import django_ratelimit.core
import pytest
from django.contrib.auth import hashers
from django.test import override_settings
from rest_framework.test import APIClient

from otp_app import throttles
from otp_app.models import LoginAttempts
from tests.helpers import PASSWORD, login, make_user

WRONG = "wrong password"
PER_ACCOUNT_3 = override_settings(TWOFA_LOGIN_FAILURES_PER_ACCOUNT="3/15m", TWOFA_LOGIN_FAILURES_PER_ADDRESS="1000/15m")
PER_ADDRESS_3 = override_settings(TWOFA_LOGIN_FAILURES_PER_ACCOUNT="1000/15m", TWOFA_LOGIN_FAILURES_PER_ADDRESS="3/15m")


@pytest.fixture(autouse=True)
def counter_clock(monkeypatch):
    """The counters' windows follow django-ratelimit's own clock: hold it still (a window must not
    end in the middle of a test) and let a test move it."""
    frozen = SimpleNamespace(now=1_800_000_000.0)
    monkeypatch.setattr(django_ratelimit.core, "time", SimpleNamespace(time=lambda: frozen.now))
    return frozen


def fail_logins(client, email, times):
    for _ in range(times):
        assert login(client, email, WRONG).status_code == 400


def assert_throttled(response):
    assert response.status_code == 429, response.content
    body = response.json()
    assert set(body) == {"status", "message"}
    assert body["status"] == "fail"
    assert isinstance(body["message"], str) and body["message"]
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 15 * 60
    return retry_after


@PER_ACCOUNT_3
def test_failures_up_to_the_account_limit_are_answered_normally(api, user):
    fail_logins(api, "ann@example.com", 3)

    assert login(api, "ann@example.com").status_code == 429


@PER_ACCOUNT_3
def test_over_the_account_limit_even_the_right_password_is_429_with_retry_after(api, user):
    fail_logins(api, "ann@example.com", 3)

    assert_throttled(login(api, "ann@example.com", PASSWORD))
    assert api.get("/api/auth/me").status_code == 401


def test_default_account_limit_is_ten_failures(api, user):
    fail_logins(api, "ann@example.com", 10)

    assert_throttled(login(api, "ann@example.com", PASSWORD))


@PER_ACCOUNT_3
def test_throttled_login_hashes_no_password(api, user):
    with mock.patch("django.contrib.auth.hashers.get_hasher", wraps=hashers.get_hasher) as hasher_lookup:
        fail_logins(api, "ann@example.com", 3)
        assert hasher_lookup.call_count > 0  # a counted failure did hash
        hasher_lookup.reset_mock()

        assert_throttled(login(api, "ann@example.com", PASSWORD))
        assert_throttled(login(api, "ann@example.com", WRONG))

    assert hasher_lookup.call_count == 0


@PER_ACCOUNT_3
def test_account_limit_counts_failures_from_every_address(user):
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        fail_logins(APIClient(REMOTE_ADDR=address), "ann@example.com", 1)

    assert_throttled(login(APIClient(REMOTE_ADDR="10.0.0.4"), "ann@example.com"))


@PER_ACCOUNT_3
def test_account_limit_counts_every_letter_case_of_the_email_as_one_account(api, user):
    for email in ("ANN@example.com", "Ann@Example.COM", " ann@EXAMPLE.com "):
        fail_logins(api, email, 1)

    assert_throttled(login(api, "ann@example.com"))


@PER_ACCOUNT_3
def test_account_limit_leaves_other_accounts_alone(api, user, other_user):
    fail_logins(api, "ann@example.com", 3)

    assert login(api, "bob@example.com").status_code == 200


@PER_ACCOUNT_3
def test_unknown_emails_are_counted_like_known_ones(api, db):
    fail_logins(api, "nobody@example.com", 3)

    assert_throttled(login(api, "nobody@example.com", WRONG))


@PER_ACCOUNT_3
def test_successful_logins_are_not_counted(api, user):
    for _ in range(5):
        assert login(api, "ann@example.com").status_code == 200

    fail_logins(api, "ann@example.com", 3)


@PER_ACCOUNT_3
def test_account_limit_ends_when_retry_after_has_passed(api, user, counter_clock):
    fail_logins(api, "ann@example.com", 3)
    retry_after = assert_throttled(login(api, "ann@example.com"))

    # RFC 9110 §10.2.3: Retry-After is how long to wait; a client that waits exactly that long
    # must not be refused again.
    counter_clock.now += retry_after

    assert login(api, "ann@example.com").status_code == 200


@PER_ADDRESS_3
def test_failures_spread_over_many_accounts_from_one_address_are_429(db):
    make_user("zoe@example.com", "Zoe")
    client = APIClient(REMOTE_ADDR="10.0.0.1")
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        fail_logins(client, email, 1)

    assert_throttled(login(client, "d@example.com", WRONG))
    assert_throttled(login(client, "zoe@example.com", PASSWORD))


@PER_ADDRESS_3
def test_address_limit_leaves_another_address_alone(db):
    make_user("zoe@example.com", "Zoe")
    attacker = APIClient(REMOTE_ADDR="10.0.0.1")
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        fail_logins(attacker, email, 1)

    response = login(APIClient(REMOTE_ADDR="10.0.0.2"), "zoe@example.com")

    assert response.status_code == 200


def test_default_address_limit_is_one_hundred_failures(db):
    client = APIClient(REMOTE_ADDR="10.0.0.1")
    for number in range(100):
        fail_logins(client, f"guess{number}@example.com", 1)

    assert_throttled(login(client, "guess100@example.com", WRONG))


@pytest.fixture
def counted_in_database(db):
    if not throttles._in_database():
        pytest.skip("the counts are kept in Redis, which expires them itself")


def test_counts_whose_window_is_over_are_deleted(api, counted_in_database, counter_clock, monkeypatch):
    monkeypatch.setattr(throttles, "PRUNE_ONE_IN", 1)  # every count prunes
    fail_logins(api, "a@example.com", 1)
    first = set(LoginAttempts.objects.values_list("key", flat=True))
    assert len(first) == 2  # the account's and the address's

    counter_clock.now += 15 * 60 + django_ratelimit.core.EXPIRATION_FUDGE  # both windows are over
    fail_logins(api, "b@example.com", 1)

    left = set(LoginAttempts.objects.values_list("key", flat=True))
    assert len(left) == 2 and not left & first


def test_counts_are_kept_when_pruning_is_off(api, counted_in_database, counter_clock, monkeypatch):
    monkeypatch.setattr(throttles, "PRUNE_ONE_IN", 0)
    fail_logins(api, "a@example.com", 1)
    counter_clock.now += 15 * 60 + django_ratelimit.core.EXPIRATION_FUDGE
    fail_logins(api, "b@example.com", 1)

    assert LoginAttempts.objects.count() == 4


@PER_ACCOUNT_3
def test_a_right_password_takes_back_its_attempt_and_never_counts_below_zero(api, user, counted_in_database):
    for _ in range(3):
        assert login(api, "ann@example.com").status_code == 200
    assert sorted(LoginAttempts.objects.values_list("attempts", flat=True)) == [0, 0]

    fail_logins(api, "ann@example.com", 3)  # each failure still counts: none was saved up

    assert_throttled(login(api, "ann@example.com"))
