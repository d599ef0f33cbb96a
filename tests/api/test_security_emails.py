"""Security emails, in process: each mailed event gives its account one message (the immediate
backend, Django's locmem outbox), saying what, when and from where and no secret; a lockout
mails once per lock; the message is a row of the change's transaction (the database backend),
never a cause of a failed request; the worker (`db_worker --batch`, in this process) sends it,
tries again with a growing delay while the mail server refuses it, and runs again a message
left running by a worker that died. Over real processes: tests/e2e/test_security_emails.py."""

import signal
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from rest_framework.test import APIClient

from otp_app import audit, notifications
from otp_app.models import SecurityEvent, UserModel
from tests.api.test_audit import ADDRESS, AGENT, SCENARIOS, ann_with_2fa, browser, full_session
from tests.helpers import (
    DISABLE,
    PASSWORD,
    PRODUCTION,
    RECOVERY_CODES,
    VALIDATE,
    add_passkey,
    admin_login,
    code_for,
    enrol,
    login,
    make_user,
    manage,
    prove_passkey,
    spellings,
    wrong_code,
)
from tests.support.authenticator import SoftwareAuthenticator
from tests.support.server import free_port
from tests.support.smtp import SmtpServer

Kind = SecurityEvent.Kind
IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
DATABASE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
SUBJECTS = {
    Kind.OTP_ENABLED: "An authenticator app was set up for your account",
    Kind.SECRET_REENROLLED: "The authenticator app of your account was replaced",
    Kind.OTP_DISABLED: "Two-factor authentication was turned off",
    Kind.PASSKEY_ADDED: "A passkey was added to your account",
    Kind.PASSKEY_REMOVED: "A passkey was removed from your account",
    Kind.RECOVERY_CODE_USED: "A recovery code of your account was used",
    Kind.RECOVERY_CODES_REGENERATED: "New recovery codes were made for your account",
    Kind.LOCKED_OUT: "Your account is locked for a while after wrong codes",
    Kind.CODES_LOCKED: "The codes of your authenticator app are locked",
    Kind.OTP_RESET_BY_ADMIN: "Two-factor authentication of your account was reset",
    Kind.PASSWORD_CHANGED: "The password of your account was changed",
}
READY, RUNNING, FAILED, SUCCESSFUL = "READY", "RUNNING", "FAILED", "SUCCESSFUL"


@pytest.fixture(autouse=True)
def immediate(settings):
    """As in development: each message is sent during its request."""
    settings.TASKS = IMMEDIATE


@pytest.fixture
def database_backend(settings):
    """As in production: each message is a row, for the worker."""
    settings.TASKS = DATABASE


@pytest.fixture
def mail_server(settings):
    """A real SMTP server, not started yet: Django's SMTP backend sends to its port."""
    server = SmtpServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 10
    yield server
    server.stop()


def run_worker() -> None:
    """`manage.py db_worker --batch`: every task that is ready now, then it stops."""
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)}
    try:
        call_command("db_worker", batch=True, reload=False, startup_delay=False, interval=0)
    finally:
        for number, handler in handlers.items():  # the worker sets its own
            signal.signal(number, handler)


def tasks() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.order_by("enqueued_at"))


def come_due() -> None:
    """Time passes for the worker: every task waiting for later is due now."""
    DBTaskResult.objects.filter(status=READY).update(run_after=timezone.now() - timedelta(seconds=1))


def sent() -> list[tuple[list[str], str]]:
    return sorted((message.to, message.subject) for message in mail.outbox)


def disabled_by_ann(clock) -> UserModel:
    """Ann switches 2FA off from her full session."""
    ann, secret = ann_with_2fa()
    assert full_session(ann.email, secret, clock).post(DISABLE, {}, format="json").status_code == 200
    return ann


# --- What is mailed, to whom -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(SCENARIOS), ids=[kind.value for kind in SCENARIOS])
def test_each_mailed_event_gives_its_account_one_message_and_no_other_event_mails(db, clock, kind):
    scenario, _ = SCENARIOS[kind]

    email = scenario(clock)

    mailed = SecurityEvent.objects.filter(kind__in=notifications.NOTIFIED)
    assert sent() == sorted(([event.email], SUBJECTS[event.kind]) for event in mailed)
    if kind in SUBJECTS:
        assert ([email], SUBJECTS[kind]) in sent()


def test_every_kind_mailed_has_its_template_and_the_events_not_mailed_are_the_routine_ones():
    assert set(notifications.TEMPLATES) == set(SUBJECTS)
    assert set(notifications.NOTIFIED) == set(SUBJECTS) & set(Kind.values)
    assert set(Kind) - set(SUBJECTS) == {
        Kind.REGISTERED,
        Kind.LOGIN_SUCCEEDED,
        Kind.LOGIN_FAILED,
        Kind.PASSKEY_USED,
        Kind.PASSKEY_REFUSED,
        Kind.SESSIONS_ENDED,
    }


def test_a_message_says_what_happened_when_and_from_where_as_sent(db, clock):
    agent = "Agent <b>&amp; \"quoted\" 'single'"
    ann, secret = ann_with_2fa()
    client = APIClient(HTTP_USER_AGENT=agent, REMOTE_ADDR=ADDRESS)
    assert login(client, ann.email).status_code == 200
    assert client.post(VALIDATE, {"token": code_for(secret, clock)}, format="json").status_code == 200

    assert client.post(DISABLE, {}, format="json").status_code == 200

    (message,) = mail.outbox
    assert message.to == [ann.email]
    assert message.subject == "Two-factor authentication was turned off"
    lines = message.body.splitlines()
    assert "When: 15 January 2027, 08:00:00 UTC" in lines  # the app's clock, START
    assert f"IP address: {ADDRESS}" in lines
    assert f"Browser or app: {agent}" in lines  # plain text: nothing escaped
    assert "If it was not you" in message.body


def test_turning_the_authenticator_off_with_passkeys_left_says_they_still_protect_the_account(db, clock):
    make_user()
    client = browser()
    assert login(client, "ann@example.com").status_code == 200
    assert add_passkey(client, SoftwareAuthenticator()).status_code == 201
    enrol(client, clock)
    mail.outbox.clear()

    assert client.post(DISABLE, {}, format="json").status_code == 200

    assert sent() == [(["ann@example.com"], "The authenticator app was removed from your account")]
    assert "Your passkeys still protect the account." in mail.outbox[0].body


@pytest.mark.parametrize("kind", list(notifications.TEMPLATES))
def test_every_message_renders_with_one_line_of_subject_and_no_link(kind):
    message = notifications.compose(
        kind=kind,
        to="ann@example.com",
        at="2027-01-15T08:00:00+00:00",
        address=ADDRESS,
        user_agent=AGENT,
        detail={"recovery_codes_left": 3},
        two_factor_on=False,
    )
    assert message.subject and "\n" not in message.subject
    assert "15 January 2027, 08:00:00 UTC" in message.body
    assert "http" not in message.body.lower() and "://" not in message.body


def test_no_message_holds_a_password_secret_code_or_session_key(db, clock, no_idle_limit):
    make_user()
    client = browser()
    assert login(client, "ann@example.com").status_code == 200
    secret, verified = enrol(client, clock)
    clock.tick(30)
    token = code_for(secret, clock)
    regenerated = client.post(RECOVERY_CODES, {"token": token}, format="json").json()["recovery_codes"]
    lost_phone = browser()
    assert login(lost_phone, "ann@example.com").status_code == 200
    assert lost_phone.post(VALIDATE, {"token": regenerated[0]}, format="json").status_code == 200
    assert lost_phone.post(DISABLE, {}, format="json").status_code == 200
    seen = [PASSWORD, secret, token, *verified["recovery_codes"], *regenerated]
    seen += [session.cookies["sessionid"].value for session in (client, lost_phone)]

    assert len(mail.outbox) == 4
    everything = "\n".join(message.message().as_string() for message in mail.outbox)
    for value in seen:
        for spelling in spellings(value):
            assert spelling not in everything


def test_a_template_of_the_project_overrides_the_apps(db, clock, settings, tmp_path):
    folder = tmp_path / "otp_app" / "email"
    folder.mkdir(parents=True)
    (folder / "otp_disabled.txt").write_text(
        '{% extends "otp_app/email/base.txt" %}{% block subject %}2FA off at Example Corp{% endblock %}'
        "{% block happened %}Your second factor is gone.{% endblock %}"
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]

    disabled_by_ann(clock)

    (message,) = mail.outbox
    assert message.subject == "2FA off at Example Corp"
    assert message.body.startswith("Your second factor is gone.\n\nWhen: 15 January 2027")


# --- A lockout mails once per lock -----------------------------------------------------------------------


def locked_by_codes(ann, secret, clock) -> callable:
    client = browser()
    assert login(client, ann.email).status_code == 200
    return lambda: client.post(VALIDATE, {"token": wrong_code(secret, clock)}, format="json").status_code


def locked_by_passkeys(ann, secret, clock) -> callable:
    authenticator = SoftwareAuthenticator()
    owner = browser()
    assert login(owner, ann.email).status_code == 200
    assert owner.post(VALIDATE, {"token": code_for(secret, clock)}, format="json").status_code == 200
    assert add_passkey(owner, authenticator).status_code == 201
    client = browser()
    assert login(client, ann.email).status_code == 200
    return lambda: prove_passkey(client, authenticator, origin="https://phishing.example").status_code


def locked_at_the_admin_login(ann, secret, clock) -> callable:
    UserModel.objects.filter(pk=ann.pk).update(is_staff=True)
    admin = Client(HTTP_USER_AGENT=AGENT, REMOTE_ADDR=ADDRESS)

    def attempt():
        response = admin_login(admin, ann.email, otp_token=wrong_code(secret, clock))
        assert response.status_code == 200  # the form again, with its error
        return 429 if "Too many wrong codes" in response.content.decode() else 400

    return attempt


@pytest.mark.parametrize("way", [locked_by_codes, locked_by_passkeys, locked_at_the_admin_login])
def test_a_lockout_mails_once_per_lock_not_per_refused_attempt(db, clock, way):
    ann, secret = ann_with_2fa()
    attempt = way(ann, secret, clock)
    mail.outbox.clear()

    assert [attempt() for _ in range(15)] == [400] * 5 + [429] * 10  # the fifth wrong one locks
    assert sent() == [([ann.email], SUBJECTS[Kind.LOCKED_OUT])]
    clock.tick(31)  # the lock is over; the next wrong one locks again, for longer
    assert [attempt() for _ in range(10)] == [400] + [429] * 9

    assert sent() == [([ann.email], SUBJECTS[Kind.LOCKED_OUT])] * 2
    assert SecurityEvent.objects.filter(kind=Kind.LOCKED_OUT).count() == 2


def test_the_lock_of_the_codes_mails_once_and_no_second_lockout_with_it(db, clock, settings):
    settings.TWOFA_CODE_FAILURE_LIMIT = 6
    ann, secret = ann_with_2fa()
    attempt = locked_by_codes(ann, secret, clock)
    assert [attempt() for _ in range(5)] == [400] * 5
    clock.tick(31)

    assert [attempt() for _ in range(5)] == [400] + [429] * 4

    assert sent() == sorted([([ann.email], SUBJECTS[Kind.LOCKED_OUT]), ([ann.email], SUBJECTS[Kind.CODES_LOCKED])])


# --- In the change's transaction, never failing its request -------------------------------------------------


class RolledBack(Exception):
    pass


def test_the_message_is_a_row_of_the_transaction_of_its_change(db, clock, database_backend, rf):
    ann = make_user()
    request = rf.post("/", HTTP_USER_AGENT=AGENT)

    with pytest.raises(RolledBack), transaction.atomic():
        audit.record(request, Kind.OTP_DISABLED, user=ann)
        assert [task.status for task in tasks()] == [READY]  # written at once, not after a commit
        raise RolledBack

    assert tasks() == []  # a change undone leaves no message behind
    with transaction.atomic():
        audit.record(request, Kind.OTP_DISABLED, user=ann)
    (task,) = tasks()
    assert task.task_path == "otp_app.notifications.send_security_email"
    assert task.args_kwargs["kwargs"]["to"] == ann.email
    assert mail.outbox == []


def test_with_the_database_backend_the_request_only_enqueues(db, clock, database_backend):
    ann = disabled_by_ann(clock)

    assert [(task.status, task.args_kwargs["kwargs"]["kind"]) for task in tasks()] == [(READY, "otp_disabled")]
    assert mail.outbox == []
    assert UserModel.objects.get(pk=ann.pk).otp_enabled is False


def test_a_failed_enqueue_leaves_the_change_and_its_transaction_whole(db, clock, settings, rf, caplog):
    same_id = uuid.uuid4()
    settings.TASKS = {"default": {**DATABASE["default"], "OPTIONS": {"id_function": lambda: same_id}}}
    ann = make_user()
    request = rf.post("/", HTTP_USER_AGENT=AGENT)

    with transaction.atomic():
        audit.record(request, Kind.OTP_ENABLED, user=ann)
        audit.record(request, Kind.OTP_DISABLED, user=ann)  # its INSERT fails: the id is taken
        UserModel.objects.filter(pk=ann.pk).update(name="Ann, still")  # the transaction goes on

    assert UserModel.objects.get(pk=ann.pk).name == "Ann, still"
    assert SecurityEvent.objects.filter(kind__in=[Kind.OTP_ENABLED, Kind.OTP_DISABLED]).count() == 2
    assert len(tasks()) == 1
    assert any("send_robust" in record.getMessage() for record in caplog.records if record.levelname == "ERROR")


def test_a_failed_enqueue_never_fails_the_request(db, clock, settings):
    settings.TASKS = {"default": {**DATABASE["default"], "QUEUES": ["elsewhere"]}}  # refuses the task

    ann = disabled_by_ann(clock)

    assert UserModel.objects.get(pk=ann.pk).otp_enabled is False
    assert tasks() == []


def test_a_failed_send_never_fails_the_request(db, clock, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens there

    ann = disabled_by_ann(clock)

    assert UserModel.objects.get(pk=ann.pk).otp_enabled is False


# --- The worker ------------------------------------------------------------------------------------------------


def test_the_worker_sends_each_message_once(transactional_db, clock, database_backend):
    ann = disabled_by_ann(clock)

    run_worker()
    run_worker()

    assert sent() == [([ann.email], SUBJECTS[Kind.OTP_DISABLED])]
    assert [task.status for task in tasks()] == [SUCCESSFUL]


@pytest.mark.parametrize("then", ["email changed", "account deleted"])
def test_the_message_goes_to_the_address_the_account_had_at_the_event(transactional_db, clock, database_backend, then):
    ann = disabled_by_ann(clock)
    if then == "email changed":
        UserModel.objects.filter(pk=ann.pk).update(email="new-ann@example.com")
    else:
        UserModel.objects.filter(pk=ann.pk).delete()

    run_worker()

    assert sent() == [(["ann@example.com"], SUBJECTS[Kind.OTP_DISABLED])]
    assert [task.status for task in tasks()] == [SUCCESSFUL]


def test_a_mail_server_that_is_down_gets_the_message_later_with_a_growing_delay(
    transactional_db, clock, database_backend, mail_server, settings
):
    settings.TWOFA_EMAIL_RETRY_SECONDS, settings.TWOFA_EMAIL_RETRY_MAX_SECONDS = 60, 200
    ann = disabled_by_ann(clock)

    for attempt, delay in enumerate([60, 120, 200, 200], start=1):
        failed_at = timezone.now()
        run_worker()
        *earlier, retry = tasks()
        assert [task.status for task in earlier] == [FAILED] * attempt
        assert retry.status == READY and retry.args_kwargs["kwargs"]["attempt"] == attempt + 1
        assert abs(retry.run_after - failed_at - timedelta(seconds=delay)) < timedelta(seconds=5)
        run_worker()  # not due yet: nothing happens
        assert len(tasks()) == attempt + 1
        come_due()
    mail_server.start()

    run_worker()

    assert [task.status for task in tasks()] == [FAILED] * 4 + [SUCCESSFUL]
    (message,) = mail_server.messages_to(ann.email)
    assert message["Subject"] == SUBJECTS[Kind.OTP_DISABLED]


@pytest.mark.parametrize(
    ("reply", "tried_again"),
    [("550 5.1.1 No such mailbox", False), ("450 4.2.1 Mailbox busy, try later", True)],
    ids=["refused for good", "refused for now"],
)
def test_a_mailbox_refused_for_good_is_not_tried_again(
    transactional_db, clock, database_backend, mail_server, reply, tried_again
):
    mail_server.refused["ann@example.com"] = reply
    mail_server.start()
    disabled_by_ann(clock)

    run_worker()

    assert [task.status for task in tasks()] == ([FAILED, READY] if tried_again else [FAILED])
    assert mail_server.received == []


def test_a_message_left_running_by_a_worker_that_died_is_sent_again(
    transactional_db, clock, database_backend, settings
):
    settings.TWOFA_EMAIL_STALE_SECONDS = 600
    disabled_by_ann(clock)
    # Taken by a worker 601 s ago, which died (its RUNNING row is all that is left of it).
    DBTaskResult.objects.update(status=RUNNING, started_at=timezone.now() - timedelta(seconds=601), worker_ids=["died"])

    run_worker()

    assert sent() == [(["ann@example.com"], SUBJECTS[Kind.OTP_DISABLED])]
    (task,) = tasks()
    assert task.status == SUCCESSFUL and task.worker_ids[0] == "died" and len(task.worker_ids) == 2


def test_a_message_a_live_worker_is_sending_is_left_to_it(transactional_db, clock, database_backend, settings):
    settings.TWOFA_EMAIL_STALE_SECONDS = 600
    disabled_by_ann(clock)
    DBTaskResult.objects.update(status=RUNNING, started_at=timezone.now() - timedelta(seconds=599))

    run_worker()

    assert mail.outbox == []
    assert [task.status for task in tasks()] == [RUNNING]


# --- The admin, the settings ---------------------------------------------------------------------------------


def test_security_emails_are_listed_in_the_admin(db, clock, database_backend, superuser):
    disabled_by_ann(clock)
    admin = Client()
    admin.force_login(superuser)

    listing = admin.get("/admin/django_tasks_database/dbtaskresult/")
    detail = admin.get(f"/admin/django_tasks_database/dbtaskresult/{tasks()[0].pk}/change/")

    assert listing.status_code == 200 and "send_security_email" in listing.content.decode()
    assert detail.status_code == 200 and "otp_disabled" in detail.content.decode()


SETTINGS = "from django.conf import settings as s; print(s.TASKS['default']['BACKEND'], s.EMAIL_BACKEND)"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "django_tasks.backends.immediate.ImmediateBackend django.core.mail.backends.console.EmailBackend"),
        (
            PRODUCTION,
            "django_tasks_db.DatabaseBackend django.core.mail.backends.smtp.EmailBackend",
        ),
        (
            {"TASKS_BACKEND": "database", "EMAIL_URL": "smtp://mail.example.com:2525"},
            "django_tasks_db.DatabaseBackend django.core.mail.backends.smtp.EmailBackend",
        ),
    ],
    ids=["development", "production", "chosen"],
)
def test_the_task_backend_and_the_mail_server_follow_debug_unless_set(env, expected):
    result = manage("shell", "-c", SETTINGS, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == expected


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TASKS_BACKEND": "celery"}, "TASKS_BACKEND"),
        ({"EMAIL_URL": "smtq://mail.example.com"}, "EMAIL_URL"),
        ({"TWOFA_EMAIL_RETRY_SECONDS": "0"}, "TWOFA_EMAIL_RETRY_SECONDS"),
    ],
)
def test_an_unknown_task_backend_mail_url_or_retry_delay_stops_the_service_at_start(env, named):
    result = manage("check", **env)
    assert result.returncode != 0
    assert named in result.stderr
