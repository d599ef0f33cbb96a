"""The audit trail: record a security event, log it, and send its signal.

An event holds who (user and email), when, from where (client address, user agent), the
request's id (its log lines have it too) and a small JSON detail. Callers pass only non-secret
detail; no code, secret or password ever goes in.
"""

import logging

from . import clock, logs, rows, signals
from .client_address import client_address
from .models import SecurityEvent, UserModel, normalise_email

logger = logging.getLogger("otp_app.security")

Kind = SecurityEvent.Kind


def record(request, kind: str, *, user: UserModel | None = None, email: str = "", **detail) -> SecurityEvent:
    return record_all(request, [(kind, detail)], user=user, email=email)[0]


def record_all(
    request, events: list[tuple[str, dict]], *, user: UserModel | None = None, email: str = ""
) -> list[SecurityEvent]:
    """Events of one request about one account, each a (kind, detail), written by one INSERT
    (a passkey sign-in is both a login and a passkey's use), then each logged and signalled in turn."""
    common = {
        "created_at": clock.as_datetime(clock.now()),
        "user": user,
        "email": email or (user.email if user is not None else ""),
        "client_address": client_address(request),
        "user_agent": request.headers.get("User-Agent", "")[:512],
        "request_id": logs.request_id.get(),
    }
    recorded = [SecurityEvent(kind=kind, detail=detail, **common) for kind, detail in events]
    rows.add(*recorded)  # every login writes its events: one plain INSERT
    for event in recorded:
        logger.info(
            "security event %s email=%s address=%s detail=%s",
            event.kind,
            event.email,
            event.client_address,
            event.detail,
            extra=logs.fields(kind=event.kind, email=event.email, address=event.client_address, detail=event.detail),
        )
        # send_robust: a receiver that fails (a mail server down) is logged by Django and must not
        # turn a change already made into an error, nor hide the recovery codes from their owner.
        signals.BY_KIND[event.kind].send_robust(sender=SecurityEvent, event=event, user=user, request=request)
    return recorded


def record_passkey_removed(request, *, user: UserModel, passkey_id, switched_off: bool, **detail) -> None:
    """`passkey_removed`, and `otp_disabled` when it was the last second factor (one INSERT); by
    its owner (the API) or by an administrator (the admin, `by`)."""
    events = [(Kind.PASSKEY_REMOVED, {"passkey": str(passkey_id), **detail})]
    if switched_off:
        events.append((Kind.OTP_DISABLED, detail))
    record_all(request, events, user=user)


def record_failed_login(request, *, email: str, user: UserModel | None = None, **detail) -> SecurityEvent:
    """A failed login for `email` (as the account it names, when one does, or `user`)."""
    email = normalise_email(email)
    if user is None:
        user = UserModel.objects.filter(email=email).first()
    return record(request, Kind.LOGIN_FAILED, user=user, email=email, **detail)


def record_lock(request, rejected, *, user: UserModel, **detail) -> None:
    """Record the lock a refused code caused, if it caused one (a `services.CodeRejected`)."""
    if rejected.codes_locked:
        record(request, Kind.CODES_LOCKED, user=user, **detail)
    elif rejected.locked:
        record(request, Kind.LOCKED_OUT, user=user, **detail)
