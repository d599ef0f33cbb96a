"""Security emails end to end: gunicorn with the database task backend, `manage.py db_worker`
in its own process and a real SMTP server. Each change mails its account once, with no secret;
a mail server that is down or silent neither slows nor fails the change, and delays its message
without losing it; a worker killed in the middle loses nothing."""

import time

import pyotp
import pytest
import requests

from tests.helpers import PASSWORD, spellings, wrong_code_now
from tests.support.authenticator import SoftwareAuthenticator
from tests.support.http_client import Account
from tests.support.server import serving
from tests.support.smtp import SmtpServer
from tests.support.worker import Worker, tasks, wait_for_status, wait_until_done

pytestmark = pytest.mark.e2e

SENDER = "security@example.com"
FAST = 10  # seconds: a request that waited for the mail server (EMAIL_URL's timeout, 30) takes longer


@pytest.fixture(scope="module")
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory, smtp):
    env = {
        "TASKS_BACKEND": "database",
        "EMAIL_URL": f"{smtp.url}?timeout=30",
        "DEFAULT_FROM_EMAIL": SENDER,
        # Attempts a second apart: the test waits for the worker, and the app never sleeps.
        "TWOFA_EMAIL_RETRY_SECONDS": "1",
        "TWOFA_EMAIL_RETRY_MAX_SECONDS": "1",
    }
    with serving(tmp_path_factory.mktemp("emails"), workers=1, threads=4, env=env) as server:
        yield server


@pytest.fixture
def worker(service):
    started = Worker(service).start()
    yield started
    started.stop()


def database(service) -> str:
    return service.env["DATABASE_URL"]


def enrolled(service) -> tuple[Account, dict]:
    """A new account with 2FA on: its browser, and what it was given (secret, recovery codes)."""
    account = Account(service.url)
    assert account.register().status_code == 201
    assert account.login().status_code == 200
    account.secret = account.post("otp/generate").json()["base32"]
    verified = account.post("otp/verify", {"token": pyotp.TOTP(account.secret).now()})
    assert verified.status_code == 200, verified.text
    return account, {"secret": account.secret, "recovery_codes": verified.json()["recovery_codes"]}


def statuses(service, account: Account) -> list[str]:
    return [task["status"] for task in tasks(database(service), to=account.email)]


def test_each_change_mails_its_account_once_and_no_message_holds_a_secret(service, smtp, worker):
    account, given = enrolled(service)  # 2FA on
    seen = [PASSWORD, given["secret"], *given["recovery_codes"]]
    replaced = account.post("otp/generate").json()["base32"]  # the authenticator replaced
    assert account.post("otp/verify", {"token": pyotp.TOTP(replaced).now()}).status_code == 200
    account.secret = replaced
    token = account.next_code()
    regenerated = account.post("otp/recovery-codes", {"token": token})  # new recovery codes
    assert regenerated.status_code == 200, regenerated.text
    new_codes = regenerated.json()["recovery_codes"]
    seen += [replaced, token, *new_codes]
    lost_phone = account.pending_session()  # a recovery code used
    assert account.post("otp/validate", {"token": new_codes[0]}, http=lost_phone).status_code == 200
    passkey = SoftwareAuthenticator(origin=service.url)  # a passkey added, then removed
    options = account.post("passkeys/registration/options", http=lost_phone).json()["publicKey"]
    added = account.post("passkeys/registration", {"credential": passkey.register(options)}, http=lost_phone)
    assert added.status_code == 201, added.text
    removed = lost_phone.delete(f"{account.api}passkeys/{added.json()['passkey']['id']}", json={}, timeout=60)
    assert removed.status_code == 200, removed.text
    guesser = account.pending_session()  # locked out once, however many codes follow
    for attempt in range(8):
        refused = account.post("otp/validate", {"token": wrong_code_now(replaced)}, http=guesser)
        assert refused.status_code == (400 if attempt < 5 else 429)
    assert account.post("otp/disable", http=lost_phone).status_code == 200  # 2FA off
    seen += [http.cookies["sessionid"] for http in (account.http, lost_phone, guesser)]

    done = wait_until_done(database(service), to=account.email)

    assert [task["status"] for task in done] == ["SUCCESSFUL"] * 8
    messages = smtp.messages_to(account.email)
    assert sorted(message["Subject"] for message in messages) == sorted(
        [
            "An authenticator app was set up for your account",
            "The authenticator app of your account was replaced",
            "New recovery codes were made for your account",
            "A recovery code of your account was used",
            "A passkey was added to your account",
            "A passkey was removed from your account",
            "Your account is locked for a while after wrong codes",
            "Two-factor authentication was turned off",
        ]
    )
    for message in messages:
        assert (message["From"], message["To"]) == (SENDER, account.email)
        lines = message.get_content().splitlines()
        assert "IP address: 127.0.0.1" in lines
        assert f"Browser or app: {requests.utils.default_user_agent()}" in lines
    as_sent = b"\n".join(smtp.raw_to(account.email)).decode()
    as_read = "\n".join(f"{message['Subject']}\n{message.get_content()}" for message in messages)
    worker_log = worker.log.read_text()
    for secret in {spelling for value in seen for spelling in spellings(value)}:
        assert secret not in as_sent and secret not in as_read and secret not in worker_log


def test_with_the_mail_server_down_a_change_succeeds_at_once_and_its_message_comes_later(service, smtp, worker):
    smtp.stop()
    try:
        started = time.monotonic()
        account, _ = enrolled(service)
        assert time.monotonic() - started < FAST
        wait_for_status(database(service), "FAILED", to=account.email)  # refused, to be tried again
        assert smtp.messages_to(account.email) == []
    finally:
        smtp.start()

    smtp.wait_for(account.email)

    done = wait_until_done(database(service), to=account.email)
    assert [task["status"] for task in done][-1] == "SUCCESSFUL"
    assert {task["status"] for task in done[:-1]} == {"FAILED"}
    assert [task["args"]["kwargs"]["attempt"] for task in done] == list(range(1, len(done) + 1))
    assert len(smtp.messages_to(account.email)) == 1


def test_a_worker_killed_while_it_sends_loses_nothing(service, smtp):
    first = Worker(service).start()
    smtp.hold()  # the mail server takes the connection, then says nothing
    try:
        started = time.monotonic()
        sending, _ = enrolled(service)
        assert smtp.held.wait(timeout=60)  # the worker is sending its message
        queued, _ = enrolled(service)  # this one waits behind it
        assert time.monotonic() - started < 2 * FAST  # neither request waited for the mail server
        first.kill()
    finally:
        smtp.release()
        first.stop()
    assert (statuses(service, sending), statuses(service, queued)) == (["RUNNING"], ["READY"])

    second = Worker(service, env={"TWOFA_EMAIL_STALE_SECONDS": "2"}).start()
    try:
        smtp.wait_for(sending.email)
        smtp.wait_for(queued.email)
        done = wait_until_done(database(service), to=sending.email)
    finally:
        second.stop()

    assert [task["status"] for task in done] == ["SUCCESSFUL"]
    assert len(done[0]["worker_ids"]) == 2  # taken by the worker that died, then by the next
    assert (statuses(service, sending), statuses(service, queued)) == (["SUCCESSFUL"], ["SUCCESSFUL"])
    assert len(smtp.messages_to(sending.email)) == len(smtp.messages_to(queued.email)) == 1
