"""Concurrency against gunicorn with several workers (on SQLite or PostgreSQL, as the run is)."""

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.helpers import PASSWORD
from tests.support.http_client import Account, fresh_email

pytestmark = pytest.mark.e2e


def test_200_concurrent_registrations_keep_every_account_and_refuse_every_duplicate(live_server_url):
    emails = [fresh_email("crowd") for _ in range(120)]
    # 80 of the 200 repeat an email, in another letter case.
    attempts = emails + [random.choice(emails).upper() for _ in range(80)]
    random.shuffle(attempts)

    def register(email):
        response = requests.post(
            live_server_url + "/api/auth/register",
            json={"email": email, "name": "Crowd", "password": PASSWORD},
            timeout=120,
        )
        return email.lower(), response.status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(register, attempts))

    statuses = Counter(status for _, status in results)
    assert set(statuses) <= {201, 409}, statuses
    assert statuses[201] == len(emails)
    assert statuses[409] == len(attempts) - len(emails)
    accepted = {email for email, status in results if status == 201}
    assert accepted == set(emails)
    # Every accepted account is really stored: each can log in.
    with ThreadPoolExecutor(max_workers=8) as pool:
        logins = list(
            pool.map(lambda email: Account(live_server_url, email).login().status_code, sorted(accepted)[:20])
        )
    assert logins == [200] * 20


def test_50_concurrent_validations_of_one_code_accept_exactly_one(live_server_url):
    account = Account(live_server_url)
    account.enrol()
    sessions = [account.pending_session() for _ in range(50)]
    code = account.next_code()

    def validate(http):
        return account.post("otp/validate", {"token": code}, http=http).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = Counter(pool.map(validate, sessions))

    assert statuses[200] == 1, statuses
    assert set(statuses) <= {200, 400, 429}, statuses
