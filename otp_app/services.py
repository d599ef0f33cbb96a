"""The use cases of the 2FA service and every rule they keep.

Register, enrol (generate + verify), check a code at login (lockout and single use), disable.
No HTTP here: views call these functions and `exceptions.py` turns their errors into answers.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When

from . import totp
from .models import UserModel, normalise_email


class EmailTaken(Exception):
    """An account with that email (in any letter case) already exists."""


class CodeRejected(Exception):
    """The code is wrong, outside the time window, or was accepted before."""


class NoSecretToVerify(Exception):
    """otp/verify was called before otp/generate handed out a secret."""


class NotEnrolled(Exception):
    """The account has no verified second factor to check a code against."""


@dataclass
class LockedOut(Exception):
    """Too many consecutive wrong codes: every attempt is refused until the lock ends."""

    retry_after: int


def as_datetime(now: float) -> datetime:
    return datetime.fromtimestamp(now, tz=timezone.utc)


def register(*, email: str, name: str, password: str) -> UserModel:
    # Hash before the transaction: on SQLite a write transaction holds the database lock, and a
    # slow hash inside it would queue every other writer behind it.
    password_hash = make_password(password)
    try:
        with transaction.atomic():
            return UserModel.objects.create(email=normalise_email(email), name=name, password=password_hash)
    except IntegrityError as error:
        # The case-insensitive unique constraint decides a race of two registrations.
        raise EmailTaken from error


@transaction.atomic
def prepare_secret(*, user: UserModel) -> str:
    """Hand out a new secret; it replaces the one in force only once otp/verify proves it."""
    secret = totp.new_secret()
    UserModel.objects.filter(pk=user.pk).update(pending_secret=secret)
    user.pending_secret = secret
    return secret


def verify_enrolment(*, user: UserModel, code: str, now: float) -> UserModel:
    """Prove the pending secret with a code from it and switch 2FA on with that secret.

    With no pending secret, a code from the secret already in force confirms it again.
    """
    if user.pending_secret:
        secret, proving = user.pending_secret, Q(pending_secret=user.pending_secret)
    elif user.otp_enabled and user.otp_secret:
        secret, proving = user.otp_secret, Q(otp_secret=user.otp_secret)
    else:
        raise NoSecretToVerify
    step = _checked_step(user=user, secret=secret, code=code, now=now)
    # Conditional on the secret still being the one checked: of two racing verifications of
    # one code only one finds it, and a concurrent disable or new generate wins over a stale code.
    switched_on = (
        UserModel.objects.filter(pk=user.pk)
        .filter(proving)
        .filter(_not_used_since(step) if not user.pending_secret else Q())
        .update(
            otp_secret=secret,
            pending_secret="",
            otp_enabled=True,
            otp_verified=True,
            last_accepted_step=step,
            failed_attempts=0,
            locked_until=None,
        )
    )
    if not switched_on:
        raise CodeRejected
    user.refresh_from_db()
    return user


def accept_code(*, user: UserModel, code: str, now: float) -> None:
    """Accept `code` once for `user`, from the secret in force; raise CodeRejected otherwise."""
    if not (user.otp_verified and user.otp_enabled and user.otp_secret):
        raise NotEnrolled
    step = _checked_step(user=user, secret=user.otp_secret, code=code, now=now)
    accepted = (
        UserModel.objects.filter(pk=user.pk, otp_secret=user.otp_secret)
        .filter(_not_used_since(step))
        .update(last_accepted_step=step, failed_attempts=0, locked_until=None)
    )
    # RFC 6238 §5.2: the row count decides, so two requests racing with one code get one success.
    if not accepted:
        raise CodeRejected


@transaction.atomic
def disable(*, user: UserModel) -> UserModel:
    UserModel.objects.filter(pk=user.pk).update(
        otp_enabled=False,
        otp_verified=False,
        otp_secret="",
        pending_secret="",
        failed_attempts=0,
        locked_until=None,
    )
    user.refresh_from_db()
    return user


def _not_used_since(step: int) -> Q:
    return Q(last_accepted_step__isnull=True) | Q(last_accepted_step__lt=step)


def _checked_step(*, user: UserModel, secret: str, code: str, now: float) -> int:
    """Count the attempt, then look at the code: the time step it matches, or CodeRejected.

    The attempt is counted *before* the code is compared, in one conditional UPDATE that also
    sets the lock, so concurrent guesses cannot slip past the limit between a check and a write.
    A correct code then resets the count (see the callers' UPDATE).
    """
    _count_attempt(user=user, now=now)
    step = totp.matching_step(secret=secret, code=code, now=now, window=settings.TWOFA_VALID_WINDOW)
    if step is None:
        raise CodeRejected
    return step


def _count_attempt(*, user: UserModel, now: float) -> None:
    moment = as_datetime(now)
    counted = (
        UserModel.objects.filter(pk=user.pk)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=moment))
        .update(failed_attempts=F("failed_attempts") + 1, locked_until=_lock_after_this_attempt(moment))
    )
    if counted:
        return
    locked_until = UserModel.objects.filter(pk=user.pk).values_list("locked_until", flat=True).first()
    if locked_until is None:  # the account was deleted meanwhile
        raise CodeRejected
    raise LockedOut(retry_after=max(1, int((locked_until - moment).total_seconds() + 0.999)))


def lock_seconds(failures: int) -> int | None:
    """How long `failures` consecutive wrong codes lock an account: None below the threshold,
    then the base delay doubling with each further wrong code, up to the maximum."""
    over = failures - settings.TWOFA_LOCKOUT_THRESHOLD
    if over < 0:
        return None
    return min(settings.TWOFA_LOCKOUT_BASE_SECONDS * 2**over, settings.TWOFA_LOCKOUT_MAX_SECONDS)


def _lock_after_this_attempt(moment: datetime) -> Case:
    # SET expressions see the row's values from before the UPDATE, so `failed_attempts=n` here
    # means this attempt is the (n+1)-th. Each delay is spelled out as a constant: portable SQL.
    threshold = settings.TWOFA_LOCKOUT_THRESHOLD
    whens = [When(failed_attempts__lt=max(threshold - 1, 0), then=Value(None))]
    failures = max(threshold, 1)
    while lock_seconds(failures) < settings.TWOFA_LOCKOUT_MAX_SECONDS:
        whens.append(When(failed_attempts=failures - 1, then=Value(moment + timedelta(seconds=lock_seconds(failures)))))
        failures += 1
    longest = Value(moment + timedelta(seconds=settings.TWOFA_LOCKOUT_MAX_SECONDS))
    return Case(*whens, default=longest, output_field=DateTimeField())
