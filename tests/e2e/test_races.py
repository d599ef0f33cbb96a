"""Races over real HTTP: the rules that the database, not a read-then-write, must keep.

A real gunicorn server (2 processes x 8 threads, one SQLite file) gets many requests at the
same moment; a barrier releases them together. Each test makes its own accounts (uuid4 emails),
so tests do not share state. Codes are computed from real time with pyotp.
"""

import random
from concurrent.futures import ThreadPoolExecutor

import pyotp
import pytest
import requests
from django.conf import settings

from tests.helpers import EMAIL_TAKEN, INVALID, PASSWORD, REGISTERED, next_code, wrong_code_now
from tests.support.authenticator import SoftwareAuthenticator
from tests.support.http_client import fresh_email, race

pytestmark = pytest.mark.e2e

TIMEOUT = 60


@pytest.fixture(scope="module")
def api(live_server_url):
    return live_server_url + "/api/auth/"


def statuses(responses) -> list[int]:
    return sorted(response.status_code for response in responses)


def assert_no_server_error(responses) -> None:
    for response in responses:
        assert response.status_code < 500, (response.status_code, response.text[:300])
        assert response.headers["Content-Type"].startswith("application/json"), response.text[:300]
        if response.status_code >= 400:
            assert response.json()["status"] == "fail" and isinstance(response.json()["message"], str)


def register(api: str, email: str) -> requests.Response:
    return requests.post(
        api + "register", json={"email": email, "name": "Racer", "password": PASSWORD}, timeout=TIMEOUT
    )


def logged_in(api: str, email: str) -> requests.Session:
    session = requests.Session()
    # A new connection per request: the sessions wait for each other's logins longer than the
    # server keeps an idle connection (2 s), and a request sent just as the server closes one fails.
    session.headers["Connection"] = "close"
    response = session.post(api + "login", json={"email": email, "password": PASSWORD}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return session


def enrolled_account(api: str) -> tuple[str, str]:
    """An account with 2FA on: (email, secret). Its verify used the current step's code."""
    email = fresh_email("race-2fa")
    assert register(api, email).status_code == 201
    session = logged_in(api, email)
    secret = session.post(api + "otp/generate", json={}, timeout=TIMEOUT).json()["base32"]
    response = session.post(api + "otp/verify", json={"token": pyotp.TOTP(secret).now()}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return email, secret


def pending_sessions(api: str, email: str, count: int) -> list[requests.Session]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        sessions = list(pool.map(lambda _: logged_in(api, email), range(count)))
    return sessions


def letter_cases(email: str, count: int) -> list[str]:
    """`count` different spellings of `email`: bit j of i upper-cases the j-th letter."""
    letters = [index for index, char in enumerate(email) if char.isalpha()]
    spellings = []
    for i in range(count):
        chars = list(email)
        for bit, index in enumerate(letters[:8]):
            if i >> bit & 1:
                chars[index] = chars[index].upper()
        spellings.append("".join(chars))
    assert len(set(spellings)) == count
    return spellings


# --- Registration --------------------------------------------------------------------------------


def test_concurrent_registrations_of_one_email_in_any_case_create_one_account(api):
    spellings = letter_cases(fresh_email("race-case"), 20)
    responses = race([lambda email=email: register(api, email) for email in spellings])
    assert_no_server_error(responses)
    assert statuses(responses) == [201] + [409] * 19
    for response in responses:
        assert response.json() == (REGISTERED if response.status_code == 201 else EMAIL_TAKEN)
    # One account, reachable by every spelling.
    for email in (spellings[0], spellings[-1].upper()):
        assert (
            requests.post(api + "login", json={"email": email, "password": PASSWORD}, timeout=TIMEOUT).status_code
            == 200
        )


def test_concurrent_registrations_of_ten_emails_three_times_each_create_ten_accounts(api):
    emails = [fresh_email(f"race-mix{i}") for i in range(10)]
    attempts = [
        email if n == 0 else email.upper() if n == 1 else email.capitalize() for email in emails for n in range(3)
    ]
    random.shuffle(attempts)
    responses = race([lambda email=email: register(api, email) for email in attempts])
    assert_no_server_error(responses)
    assert statuses(responses) == [201] * 10 + [409] * 20
    created = {
        email.lower() for email, response in zip(attempts, responses, strict=True) if response.status_code == 201
    }
    assert created == set(emails)


# --- Single use of a code --------------------------------------------------------------------------


def test_one_code_sent_by_twenty_pending_sessions_at_once_is_accepted_once(api):
    email, secret = enrolled_account(api)
    sessions = pending_sessions(api, email, 20)
    code = next_code(secret)
    responses = race(
        [
            lambda session=session: session.post(api + "otp/validate", json={"token": code}, timeout=TIMEOUT)
            for session in sessions
        ]
    )
    assert_no_server_error(responses)
    codes = statuses(responses)
    assert codes.count(200) == 1, codes
    assert set(codes) <= {200, 400, 429}, codes
    winner = next(response for response in responses if response.status_code == 200)
    assert winner.json() == {"otp_valid": True}
    for response in responses:
        if response.status_code == 400:
            assert response.json()["message"] == INVALID["message"]
    # Only the winner's session is full.
    full = [session.get(api + "me", timeout=TIMEOUT).status_code for session in sessions]
    assert sorted(full) == [200] + [403] * 19


@pytest.mark.parametrize("count", [2, 10])
def test_concurrent_verify_of_one_code_in_one_session_succeeds_once(api, count):
    email = fresh_email("race-verify")
    assert register(api, email).status_code == 201
    first = logged_in(api, email)
    secret = first.post(api + "otp/generate", json={}, timeout=TIMEOUT).json()["base32"]
    # The same session cookie in every thread (a requests.Session is not shared across threads).
    sessions = [first] + [requests.Session() for _ in range(count - 1)]
    for session in sessions[1:]:
        session.cookies.update(first.cookies)
    code = pyotp.TOTP(secret).now()
    responses = race(
        [
            lambda session=session: session.post(api + "otp/verify", json={"token": code}, timeout=TIMEOUT)
            for session in sessions
        ]
    )
    assert_no_server_error(responses)
    codes = statuses(responses)
    assert codes.count(200) == 1, codes
    assert set(codes) <= {200, 400, 429}, codes
    me = first.get(api + "me", timeout=TIMEOUT).json()["user"]
    assert me["otp_enabled"] is True and me["otp_verified"] is True


# --- Guessing is bounded ---------------------------------------------------------------------------


def test_thirty_concurrent_wrong_codes_get_at_most_the_threshold_of_answers(api):
    threshold = settings.TWOFA_LOCKOUT_THRESHOLD
    email, secret = enrolled_account(api)
    sessions = pending_sessions(api, email, 30)
    guess = wrong_code_now(secret)
    responses = race(
        [
            lambda session=session: session.post(api + "otp/validate", json={"token": guess}, timeout=TIMEOUT)
            for session in sessions
        ]
    )
    assert_no_server_error(responses)
    codes = statuses(responses)
    assert set(codes) <= {400, 429}, codes
    # Each 400 means a code was looked at; the lock bounds how many, however parallel the guesses.
    assert 1 <= codes.count(400) <= threshold, codes
    for response in responses:
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
    # Still locked: the right code is refused unseen now.
    right = next_code(secret)
    assert sessions[0].post(api + "otp/validate", json={"token": right}, timeout=TIMEOUT).status_code == 429


def test_concurrent_wrong_passwords_get_no_more_guesses_than_the_account_limit(api):
    """Each attempt is counted before its password is hashed: of 30 wrong passwords sent at
    once, exactly the limit's 10 are checked (400) and every other one is refused (429)."""
    email = fresh_email("race-password")
    assert register(api, email).status_code == 201

    def guess():
        return requests.post(api + "login", json={"email": email, "password": "wrong guess"}, timeout=TIMEOUT)

    responses = race([guess] * 30)

    assert_no_server_error(responses)
    assert statuses(responses) == [400] * 10 + [429] * 20
    assert requests.post(api + "login", json={"email": email, "password": PASSWORD}, timeout=TIMEOUT).status_code == 429


def passkey_account(api: str, *, counter: bool = True) -> tuple[str, SoftwareAuthenticator]:
    """An account whose only second factor is a passkey: (email, its authenticator)."""
    email = fresh_email("race-passkey")
    assert register(api, email).status_code == 201
    session = logged_in(api, email)
    authenticator = SoftwareAuthenticator(origin=api.removesuffix("/api/auth/"), counter=counter)
    options = session.post(api + "passkeys/registration/options", json={}, timeout=TIMEOUT).json()["publicKey"]
    answer = {"credential": authenticator.register(options)}
    assert session.post(api + "passkeys/registration", json=answer, timeout=TIMEOUT).status_code == 201
    return email, authenticator


def passkey_answer(api: str, session: requests.Session, authenticator: SoftwareAuthenticator) -> dict:
    options = session.post(api + "passkeys/authentication/options", json={}, timeout=TIMEOUT).json()["publicKey"]
    return {"credential": authenticator.authenticate(options)}


def test_one_passkey_answer_sent_many_times_at_once_is_accepted_once(api):
    email, authenticator = passkey_account(api, counter=False)  # no counter: only the challenge stops a replay
    [browser] = pending_sessions(api, email, 1)
    answer = passkey_answer(api, browser, authenticator)

    def send():
        copy = requests.Session()
        copy.cookies.update(browser.cookies)
        return copy.post(api + "passkeys/authentication", json=answer, timeout=TIMEOUT)

    # Four: each refusal counts as a wrong code, and five would lock the account.
    responses = race([send] * 4)

    assert_no_server_error(responses)
    assert statuses(responses) == [200, 400, 400, 400]


def test_answers_of_one_passkey_to_different_logins_at_once_are_all_accepted(api):
    """Passkeys synced between devices keep no counter: one person signing in on several devices
    at the same moment is no replay. Each answer that loses the race to record its use is judged
    again on the row as the winner left it, and passes."""
    email, authenticator = passkey_account(api, counter=False)
    browsers = pending_sessions(api, email, 6)
    answers = [passkey_answer(api, browser, authenticator) for browser in browsers]

    responses = race(
        [
            lambda browser=browser, answer=answer: browser.post(
                api + "passkeys/authentication", json=answer, timeout=TIMEOUT
            )
            for browser, answer in zip(browsers, answers, strict=True)
        ]
    )

    assert_no_server_error(responses)
    assert statuses(responses) == [200] * 6
