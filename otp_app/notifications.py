"""Security emails: the account's address hears of each change of its factors or password, each
lockout, each recovery code used and an administrator's reset; what happened, when and from
where, never a secret, a code or a link that signs in.

`enqueue`, a receiver of those events' signals (apps.py connects it), makes the message a task.
With the database backend that is an INSERT in the transaction of the change it reports: the
message exists if and only if the change does, and the request never waits for a mail server.
`manage.py db_worker` sends it, tries again later while the mail server refuses it, and runs
again the messages a worker left running when it died (`requeue_stale`).
"""

import logging
import smtplib
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django_tasks import TaskResultStatus, task
from django_tasks_db.models import DBTaskResult

from . import rows, signals
from .models import SecurityEvent, UserModel

logger = logging.getLogger("otp_app.notifications")

# The kinds of event that are mailed, by value, and their templates: otp_app/email/<name>.txt,
# which a project's own template folder may override. A kind listed here that this version does
# not record is mailed from the version that records it.
TEMPLATES = {
    "otp_enabled": "otp_enabled",
    "secret_reenrolled": "authenticator_replaced",
    "otp_disabled": "otp_disabled",
    "passkey_added": "passkey_added",
    "passkey_removed": "passkey_removed",
    "recovery_code_used": "recovery_code_used",
    "recovery_codes_regenerated": "recovery_codes_regenerated",
    "locked_out": "locked_out",
    "codes_locked": "codes_locked",
    "password_changed": "password_changed",
    "otp_reset_by_admin": "otp_reset_by_admin",
}
NOTIFIED = [kind for kind in TEMPLATES if kind in signals.BY_KIND]


def enqueue(sender, event: SecurityEvent, user: UserModel | None = None, **kwargs) -> None:
    """The message of `event`, to the address the account had then, enqueued in the transaction
    of the change. In a savepoint: should the INSERT fail, the change stands and its request
    succeeds (send_robust logs the error)."""
    if not event.email:
        return
    with transaction.atomic():
        send_security_email.enqueue(
            kind=str(event.kind),
            to=event.email,
            at=event.created_at.isoformat(),
            address=event.client_address or "",
            user_agent=event.user_agent,
            detail=event.detail,
            two_factor_on=_two_factor_on(user),
            attempt=1,
        )


@task(takes_context=True)
def send_security_email(context, *, kind: str, to: str, attempt: int = 1, **facts) -> None:
    """Send one security email. A mail server that does not take it (down, refusing for now)
    gets it again later: the next attempt is enqueued, and this one ends, in one transaction."""
    message = compose(kind=kind, to=to, **facts)
    try:
        message.send()
    except (smtplib.SMTPException, OSError) as error:
        if _refused_for_good(error):
            logger.warning("security email %s to %s refused for good by the mail server", kind, to)
            raise
        _retry_later(context, kind=kind, to=to, attempt=attempt, **facts)
        raise


def compose(*, kind: str, to: str, at: str, address: str, user_agent: str, detail: dict, two_factor_on: bool):
    """The message: its template renders the subject on the first line, the body after it."""
    context = {
        "email": to,
        "at": datetime.fromisoformat(at),
        "address": address,
        "user_agent": user_agent,
        "detail": detail,
        "two_factor_on": two_factor_on,
        "site": settings.TWOFA_ISSUER,
    }
    subject, _, body = render_to_string(f"otp_app/email/{TEMPLATES[kind]}.txt", context).strip().partition("\n")
    return EmailMessage(subject=" ".join(subject.split()), body=_paragraphs(body), to=[to])


def retry_delay(attempt: int) -> int:
    """Seconds before the attempt after `attempt` (the first is 1): doubling, capped."""
    return min(settings.TWOFA_EMAIL_RETRY_SECONDS * 2 ** min(attempt - 1, 40), settings.TWOFA_EMAIL_RETRY_MAX_SECONDS)


def requeue_stale() -> int:
    """Make ready again the security emails a worker took more than TWOFA_EMAIL_STALE_SECONDS
    ago and never finished: that worker died (no send lasts that long). At least once: a message
    sent just before its worker died is sent again."""
    cutoff = timezone.now() - timedelta(seconds=settings.TWOFA_EMAIL_STALE_SECONDS)
    return DBTaskResult.objects.filter(
        task_path=send_security_email.module_path, status=TaskResultStatus.RUNNING, started_at__lt=cutoff
    ).update(status=TaskResultStatus.READY)


def _retry_later(context, *, attempt: int, **message) -> None:
    if not send_security_email.get_backend().supports_defer:
        return  # the immediate backend, in development: nothing waits for later
    delay = retry_delay(attempt)
    logger.warning(
        "security email %s (attempt %d) not taken by the mail server, tried again in %d s",
        message["kind"],
        attempt,
        delay,
    )
    later = send_security_email.using(run_after=timezone.now() + timedelta(seconds=delay))
    with transaction.atomic():
        later.enqueue(attempt=attempt + 1, **message)
        # This attempt ends with its successor: a worker that dies now leaves no running task
        # behind to be run again, and so no second message.
        DBTaskResult.objects.filter(pk=context.task_result.id, status=TaskResultStatus.RUNNING).update(
            status=TaskResultStatus.FAILED, finished_at=timezone.now()
        )


def _two_factor_on(user: UserModel | None) -> bool:
    # Read again: a caller may hold the account as it was before the change (the admin's reset).
    # One prepared statement (rows.py): every factor change of every account reads it.
    row = rows.first(UserModel, ("id", "=", user.pk), only=("otp_enabled", "passkey_count")) if user else None
    return row is not None and row.two_factor_enabled


def _paragraphs(text: str) -> str:
    """Lines without trailing spaces, one blank line between paragraphs: what template tags
    leave around them goes."""
    paragraphs, lines = [], []
    for line in [*text.splitlines(), ""]:
        if line.strip():
            lines.append(line.rstrip())
        elif lines:
            paragraphs.append("\n".join(lines))
            lines = []
    return "\n\n".join(paragraphs) + "\n"


def _refused_for_good(error: Exception) -> bool:
    # A 5xx for the mailbox (RFC 5321 §4.2.1): no such mailbox; trying again changes nothing.
    return isinstance(error, smtplib.SMTPRecipientsRefused) and all(
        code >= 500 for code, _ in error.recipients.values()
    )
