"""Two (or many) concurrent uses of one recovery code against a real server: exactly one succeeds.

A real gunicorn server (2 processes x 8 threads, one database) gets the requests from separate
pending logins of one account, released together by a barrier. The code is consumed by one
conditional UPDATE in the database, so exactly one login completes; the others get 400 (code
used) or 429 (their failures locked the account), never a 5xx.
"""

import pyotp
import pytest
import requests

from tests.support.http_client import Account, race

pytestmark = pytest.mark.e2e

TIMEOUT = 60
CONCURRENT = 16


def enrolled_with_codes(base_url: str) -> tuple[Account, list[str]]:
    """An account that switched 2FA on over HTTP; verify's answer carries the recovery codes."""
    account = Account(base_url)
    assert account.register().status_code == 201
    assert account.login().status_code == 200
    account.secret = account.post("otp/generate").json()["base32"]
    response = account.post("otp/verify", {"token": pyotp.TOTP(account.secret).now()})
    assert response.status_code == 200, response.text
    codes = response.json()["recovery_codes"]
    assert len(codes) == 10
    return account, codes


def validate_at_once(account: Account, sessions: list[requests.Session], tokens: list[str]) -> list[requests.Response]:
    """Each session posts its token to otp/validate; all are released at the same moment."""
    return race(
        [
            lambda session=session, token=token: account.post("otp/validate", {"token": token}, http=session)
            for session, token in zip(sessions, tokens, strict=True)
        ],
        timeout=TIMEOUT,
    )


def assert_exactly_one_success(responses) -> int:
    statuses = [response.status_code for response in responses]
    for response in responses:
        assert response.status_code < 500, (response.status_code, response.text[:300])
        assert response.headers["Content-Type"].startswith("application/json"), response.text[:300]
    assert statuses.count(200) == 1, sorted(statuses)
    assert set(statuses) <= {200, 400, 429}, sorted(statuses)
    winner = statuses.index(200)
    assert responses[winner].json() == {"otp_valid": True}
    for response in responses:
        if response.status_code != 200:
            body = response.json()
            assert body["status"] == "fail" and isinstance(body["message"], str)
    return winner


def test_concurrent_uses_of_one_recovery_code_let_exactly_one_login_in(live_server_url):
    account, codes = enrolled_with_codes(live_server_url)
    sessions = [account.pending_session() for _ in range(CONCURRENT)]

    responses = validate_at_once(account, sessions, [codes[0]] * CONCURRENT)

    winner = assert_exactly_one_success(responses)
    for index, session in enumerate(sessions):
        me = session.get(account.api + "me", timeout=TIMEOUT)
        assert me.status_code == (200 if index == winner else 403), (index, me.text)
    assert sessions[winner].get(account.api + "me", timeout=TIMEOUT).json()["user"]["recovery_codes_left"] == 9


def test_two_concurrent_uses_of_one_recovery_code_give_one_success(live_server_url):
    account, codes = enrolled_with_codes(live_server_url)
    sessions = [account.pending_session(), account.pending_session()]

    responses = validate_at_once(account, sessions, [codes[5], codes[5]])

    assert sorted(response.status_code for response in responses) == [200, 400]
    # Afterwards the code stays used, and the other codes still work.
    assert account.post("otp/validate", {"token": codes[5]}, http=account.pending_session()).status_code == 400
    assert account.post("otp/validate", {"token": codes[6]}, http=account.pending_session()).status_code == 200


def test_concurrent_uses_in_different_spellings_are_one_code(live_server_url):
    account, codes = enrolled_with_codes(live_server_url)
    code = codes[2]
    spellings = [code, code.upper(), code.replace("-", ""), code.replace("-", " "), f" {code.upper()} "]
    tokens = [spellings[index % len(spellings)] for index in range(CONCURRENT)]
    sessions = [account.pending_session() for _ in range(CONCURRENT)]

    assert_exactly_one_success(validate_at_once(account, sessions, tokens))
