"""The use cases of the 2FA service and every rule they keep.

Register, enrol (generate + verify), check a code at login (lockout and single use), recovery
codes, passkeys (add, rename, remove, accept), disable, and the administrator's reset and unlock.
No HTTP here: views call these functions and `exceptions.py` turns their errors into answers.
"""

import contextlib
import enum
import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone as django_timezone
from webauthn.helpers import bytes_to_base64url

from . import crypto, passkeys, rows, totp
from .clock import as_datetime
from .models import Passkey, RecoveryCode, Session, UserModel, normalise_email
from .session_backends.db import stored_key


class EmailTaken(Exception):
    """An account with that email (in any letter case) already exists."""


class CodeRejected(Exception):
    """The code is wrong, outside the time window, or was accepted before.

    `locked` says that this very attempt locked the account (for the audit trail); `proof`,
    what was refused (a `Proof`: a TOTP code unless said otherwise), for the metrics.
    """

    def __init__(self, locked: bool = False, codes_locked: bool = False, proof: "Proof | None" = None):
        super().__init__()
        self.locked = locked
        self.codes_locked = codes_locked  # this attempt was the last the authenticator's codes get
        self.proof = proof or Proof.TOTP


class PasskeyRejected(CodeRejected):
    """A passkey's answer was not accepted: counted as a wrong code. `cloned`: its signature was
    valid but its counter did not grow, the mark of a copied authenticator."""

    def __init__(self, locked: bool = False, cloned: bool = False, codes_locked: bool = False):
        super().__init__(locked=locked, codes_locked=codes_locked, proof=Proof.PASSKEY)
        self.cloned = cloned


class PasskeyTaken(Exception):
    """That credential is registered already (to this account or another)."""


class PasskeyNotFound(Exception):
    """No passkey of this account has that id."""


class SessionNotFound(Exception):
    """No live session of this account has that id."""


class NoPasskeys(Exception):
    """The account has no passkey to answer with."""


class NoSecretToVerify(Exception):
    """otp/verify was called before otp/generate handed out a secret."""


class NotEnrolled(Exception):
    """The account has no verified second factor to check a code against."""


class CodesLocked(Exception):
    """TWOFA_CODE_FAILURE_LIMIT consecutive wrong codes: the authenticator's codes stay refused
    until a recovery code is accepted or an administrator unlocks the account."""


@dataclass
class LockedOut(Exception):
    """Too many consecutive wrong codes: every attempt is refused until the lock ends."""

    retry_after: int


class Proof(enum.Enum):
    """What proved the second factor."""

    TOTP = "totp"
    RECOVERY_CODE = "recovery_code"
    PASSKEY = "passkey"


@dataclass
class Enrolment:
    user: UserModel
    switched_on: bool  # TOTP went on; False: a new secret replaced one already in force
    recovery_codes: list[str]  # shown once, when 2FA is switched on (no passkey before)


@dataclass
class PasskeyAdded:
    passkey: Passkey
    user: UserModel
    switched_on: bool  # it is the account's first second factor
    recovery_codes: list[str]  # shown once, when 2FA is switched on


RECOVERY_CODE_COUNT = 10
# 32 symbols, without the look-alikes 0/O and 1/I: 10 of them are 50 random bits.
RECOVERY_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_LOOK_ALIKES = str.maketrans({"1": "L", "I": "L"})


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
    user.pending_secret = crypto.encrypt(secret)
    UserModel.objects.filter(pk=user.pk).update(pending_secret=user.pending_secret)
    return secret


def verify_enrolment(*, user: UserModel, code: str, now: float) -> Enrolment:
    """Prove the pending secret with a code from it and switch 2FA on with that secret.

    With no pending secret, a code from the secret already in force confirms it again.
    Switching 2FA on also issues the recovery codes.
    """
    if user.pending_secret:
        stored, proving = user.pending_secret, Q(pending_secret=user.pending_secret)
    elif user.otp_enabled and user.otp_secret:
        stored, proving = user.otp_secret, Q(otp_secret=user.otp_secret)
    else:
        raise NoSecretToVerify
    step = _checked_step(user=user, secret=crypto.decrypt(stored), code=code, now=now)
    with transaction.atomic():
        # The factors in force as this transaction finds them, the row locked until it ends: a
        # passkey added or removed since the request read the account decides whether this
        # switches 2FA on (and issues the recovery codes), exactly once.
        in_force = UserModel.objects.select_for_update().filter(pk=user.pk).values_list("otp_enabled", "passkey_count")
        was_enabled, passkeys_before = in_force.first() or (False, 0)  # an account deleted: nothing matches below
        had_factor = was_enabled or passkeys_before > 0
        # Conditional on the stored secret still being the one checked: of two racing
        # verifications of one code only one finds it, and a concurrent disable or a newer
        # generate wins over a stale code.
        switched = (
            UserModel.objects.filter(pk=user.pk)
            .filter(proving)
            .filter(_not_used_since(step) if not user.pending_secret else Q())
            .update(
                otp_secret=stored,
                pending_secret="",
                otp_enabled=True,
                otp_verified=True,
                last_accepted_step=step,
                failed_attempts=0,
                locked_until=None,
            )
        )
        codes = _replace_recovery_codes(user=user) if switched and not had_factor else []
    if not switched:
        raise CodeRejected
    user.refresh_from_db()
    return Enrolment(user=user, switched_on=not was_enabled, recovery_codes=codes)


def accept_code(*, user: UserModel, code: str, now: float, recovery: bool = True) -> Proof:
    """Accept `code` once for `user`: a TOTP code of the secret in force or, when `recovery`,
    one of the account's recovery codes. Raise CodeRejected otherwise."""
    totp_on = user.otp_verified and user.otp_enabled and user.otp_secret
    if not (totp_on or user.passkey_count):
        raise NotEnrolled
    # While locked, refuse from the row already read: no secret decrypted, no code compared.
    _refuse_while_locked(user.locked_until, as_datetime(now))
    recovery_code = normalise_recovery_code(code)
    if recovery and recovery_code is not None:
        _count_attempt(user=user, now=now)
        _use_recovery_code(user=user, code=recovery_code, now=now)
        return Proof.RECOVERY_CODE
    if not totp_on:  # passkeys only: the recovery codes stand in for them, nothing else does
        raise NotEnrolled
    _refuse_locked_codes(user.failed_attempts)
    step = totp.matching_step(
        secret=crypto.decrypt(user.otp_secret), code=code, now=now, window=settings.TWOFA_VALID_WINDOW
    )
    if step is None or (user.last_accepted_step is not None and user.last_accepted_step >= step):
        _count_attempt(user=user, now=now)  # wrong, or used before (as read: the UPDATE decides)
    elif _accept_step(user=user, step=step, now=now):
        return Proof.TOTP
    raise _rejected(user)


def _accept_step(*, user: UserModel, step: int, now: float) -> bool:
    """Accept the time step a right code matched, in one conditional UPDATE that also settles
    the attempt; False (the attempt counted as wrong) when the step was accepted before.

    The UPDATE applies only while the count is still the one read, no lock is in force, the
    secret is the one checked and no step at or after this one was accepted (RFC 6238 §5.2): so
    an attempt is never accepted past a lock that concurrent guesses set, and of two requests
    racing with one code only one succeeds. Anything else changed: re-read and decide again.
    """
    moment = as_datetime(now)
    failures = user.failed_attempts
    for _ in range(_COUNT_TRIES):
        accepted = (
            UserModel.objects.filter(pk=user.pk, otp_secret=user.otp_secret, failed_attempts=failures)
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=moment))
            .filter(_not_used_since(step))
            .update(last_accepted_step=step, failed_attempts=0, locked_until=None)
        )
        if accepted:
            user.failed_attempts, user.locked_until, user.last_accepted_step = 0, None, step
            return True
        row = (
            UserModel.objects.filter(pk=user.pk)
            .values_list("failed_attempts", "locked_until", "last_accepted_step", "otp_secret")
            .first()
        )
        if row is None:  # the account was deleted meanwhile
            raise CodeRejected
        failures, locked_until, last_step, secret = row
        _refuse_while_locked(locked_until, moment)
        _refuse_locked_codes(failures)
        if secret != user.otp_secret or (last_step is not None and last_step >= step):
            # Replayed, or the secret was replaced meanwhile: a wrong attempt.
            user.failed_attempts, user.locked_until = failures, locked_until
            _count_attempt(user=user, now=now)
            return False
    raise LockedOut(retry_after=1)


def regenerate_recovery_codes(*, user: UserModel, code: str, now: float) -> list[str]:
    """Replace every recovery code, once a current TOTP code proves the phone is at hand."""
    accept_code(user=user, code=code, now=now, recovery=False)
    with transaction.atomic():
        codes = _replace_recovery_codes(user=user)
    user.refresh_from_db()
    return codes


@transaction.atomic
def disable(*, user: UserModel) -> UserModel:
    """Turn TOTP off. With passkeys left, 2FA stays on with them and the recovery codes stay."""
    _clear_totp(user=user)
    if not Passkey.objects.filter(user=user).exists():
        _clear_second_factor(user=user)
    user.refresh_from_db()
    return user


@transaction.atomic
def reset_by_admin(*, user: UserModel) -> None:
    """An administrator's reset for a person who lost every factor and the recovery codes."""
    _clear_totp(user=user)
    Passkey.objects.filter(user=user).delete()
    _clear_second_factor(user=user)


# --- Passwords and sessions --------------------------------------------------------------------------
def set_password(*, user: UserModel, password: str) -> None:
    user.set_password(password)
    user.save(update_fields=["password", "updated_at"])


@dataclass(frozen=True)
class SessionSummary:
    """What an account's owner sees of one of its live sessions: never its key."""

    id: str
    current: bool
    full: bool
    created_at: datetime | None
    last_active_at: datetime | None
    ip: str | None
    user_agent: str


_SUMMARY_COLUMNS = ("public_id", "session_key", "full", "created_at", "last_active_at", "ip", "user_agent")


def live_sessions(*, user: UserModel, current: str | None, now: float) -> list[SessionSummary]:
    """The account's sessions that have not ended, the most recently used first."""
    current_row = stored_key(current) if current else None
    live = rows.values(
        Session,
        _SUMMARY_COLUMNS,
        ("user", "=", user.pk),
        ("expire_date", ">", as_datetime(now)),
        order_by="-last_active_at",
    )
    return [
        SessionSummary(
            id=public_id,
            current=key == current_row,
            full=full,
            created_at=created_at,
            last_active_at=last_active_at,
            ip=ip,
            user_agent=user_agent,
        )
        for public_id, key, full, created_at, last_active_at, ip, user_agent in live
    ]


# What a public id can be (secrets.token_urlsafe): anything else names no session, and is never
# sent to the database (PostgreSQL refuses a NUL byte with an error, not an empty result).
_PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


def end_session(*, user: UserModel, session_id: str, current: str | None, now: float) -> bool:
    """End the account's live session of that public id; whether it was `current`'s."""
    if not _PUBLIC_ID.fullmatch(session_id):
        raise SessionNotFound
    found = (
        Session.objects.filter(user_id=user.pk, public_id=session_id, expire_date__gt=as_datetime(now))
        .values_list("session_key", flat=True)
        .first()
    )
    if found is None:
        raise SessionNotFound
    Session.objects.filter(session_key=found).delete()
    return current is not None and found == stored_key(current)


@contextlib.contextmanager
def factor_change(*, user: UserModel, keep: str | None):
    """A change of an account's factors or password, the events that report it (and so their
    emails), and the end of every session of the account but the one of key `keep`: one
    transaction. A refused code changes nothing, yet its count and lock stand: they commit."""
    refused = None
    with transaction.atomic():
        try:
            yield
        except CodeRejected as error:
            refused = error
        else:
            end_sessions(user=user, keep=keep)
    if refused is not None:
        raise refused


def end_sessions(*, user: UserModel, keep: str | None = None) -> int:
    """End every session of the account but the one of key `keep`: how many ended."""
    sessions = Session.objects.filter(user_id=user.pk)
    if keep is not None:
        sessions = sessions.exclude(session_key=stored_key(keep))
    return sessions.delete()[0]


def passkey_user_handle(*, user: UserModel) -> str:
    """The account's WebAuthn user handle: 32 random bytes, made the first time it is needed."""
    if not user.webauthn_user_handle:
        handle = bytes_to_base64url(secrets.token_bytes(32))
        UserModel.objects.filter(pk=user.pk, webauthn_user_handle__isnull=True).update(webauthn_user_handle=handle)
        user.refresh_from_db(fields=["webauthn_user_handle"])
    return user.webauthn_user_handle


def add_passkey(*, user: UserModel, new: passkeys.NewCredential, name: str) -> PasskeyAdded:
    """Store a verified new credential. The account's first second factor switches 2FA on and
    issues the recovery codes."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                passkey = Passkey.objects.create(
                    user=user,
                    credential_id=new.credential_id,
                    public_key=new.public_key,
                    sign_count=new.sign_count,
                    transports=new.transports,
                    backed_up=new.backed_up,
                    name=name,
                )
        except IntegrityError as error:  # the unique credential id decides a race too
            raise PasskeyTaken from error
        # The UPDATE locks the row first, so of two racing first passkeys one sees the other.
        UserModel.objects.filter(pk=user.pk).update(passkey_count=F("passkey_count") + 1)
        user.refresh_from_db()
        switched_on = not user.otp_enabled and user.passkey_count == 1
        codes = _replace_recovery_codes(user=user) if switched_on else []
    if not passkey.name:
        passkey.name = f"Passkey {user.passkey_count}"
        Passkey.objects.filter(pk=passkey.pk).update(name=passkey.name)
    user.refresh_from_db()
    return PasskeyAdded(passkey=passkey, user=user, switched_on=switched_on, recovery_codes=codes)


def rename_passkey(*, user: UserModel, passkey_id, name: str) -> Passkey:
    if not Passkey.objects.filter(user=user, pk=passkey_id).update(name=name):
        raise PasskeyNotFound
    return Passkey.objects.get(pk=passkey_id)


@transaction.atomic
def remove_passkey(*, user: UserModel, passkey_id) -> tuple[UserModel, bool]:
    """Remove a passkey; the last second factor gone turns 2FA off (recovery codes deleted).
    Returns the account and whether 2FA went off."""
    if not Passkey.objects.filter(user=user, pk=passkey_id).delete()[0]:
        raise PasskeyNotFound
    UserModel.objects.filter(pk=user.pk).update(passkey_count=F("passkey_count") - 1)
    user.refresh_from_db()
    switched_off = not user.two_factor_enabled
    if switched_off:
        _clear_second_factor(user=user)
        user.refresh_from_db()
    return user, switched_off


def find_passkey(credential_id: str, *, with_account: bool = False) -> Passkey | None:
    """The passkey of that credential id, with its account read in the same statement when
    asked (a sign-in has no other way to it). Every passkey use runs it: plain statements."""
    if not with_account:
        return rows.first(Passkey, ("credential_id", "=", credential_id))
    passkey, account = rows.first_with(Passkey, "user", ("credential_id", "=", credential_id))
    if passkey is not None:
        passkey.user = account
    return passkey


_PASSKEY_RACES = 20  # answers of one passkey accepted at the same moment, each judged on the row as changed


def accept_passkey(*, user: UserModel, passkey: Passkey | None, verify, challenge: str, now: float) -> Passkey:
    """Accept an answer of `passkey` to `challenge` for `user`: `verify(public_key)` checks it
    (passkeys.verify_assertion). A refusal counts as a wrong code, under the same lockout; while
    locked nothing is checked. A valid signature whose counter does not grow (both non-zero) is
    refused as a possibly cloned authenticator.

    Each answer is accepted once: the UPDATE that records the use applies only if the passkey's
    row is still as read (its last answered challenge and counter), so of requests racing with
    one answer (one session, on any instance) one passes, also for authenticators without a
    counter; one that lost the race to another answer reads the row again and is judged on it."""
    moment = as_datetime(now)
    _refuse_while_locked(user.locked_until, moment)
    if passkey is None or passkey.user_id != user.pk:  # unknown, or another account's: the same refusal
        _count_attempt(user=user, now=now)
        raise _passkey_rejected(user)
    try:
        verified = verify(bytes(passkey.public_key))
    except passkeys.Refused:
        _count_attempt(user=user, now=now)
        raise _passkey_rejected(user) from None
    answered = hashlib.sha256(challenge.encode()).hexdigest()
    changes = {"last_challenge": answered, "backed_up": verified.backed_up, "last_used_at": moment}
    for _ in range(_PASSKEY_RACES):
        replayed = passkey.last_challenge == answered
        # A counter that does not grow (both non-zero) is refused as a possibly cloned key.
        cloned = bool(verified.sign_count) and 0 < verified.sign_count <= passkey.sign_count
        if replayed or cloned:
            _count_attempt(user=user, now=now)
            raise _passkey_rejected(user, cloned=not replayed)
        # An answer without a counter (0) leaves the highest one seen, so a copy of the key that
        # signs with a counter again is still judged against it.
        changes["sign_count"] = max(verified.sign_count, passkey.sign_count)
        as_read = (("id", "=", passkey.pk), ("last_challenge", "=", passkey.last_challenge))
        if rows.update(Passkey, changes, *as_read, ("sign_count", "=", passkey.sign_count)):
            break
        passkey = rows.first(Passkey, ("id", "=", passkey.pk))  # changed meanwhile: judge it again
        if passkey is None:  # removed meanwhile
            _count_attempt(user=user, now=now)
            raise _passkey_rejected(user)
    else:
        _count_attempt(user=user, now=now)
        raise _passkey_rejected(user)
    if user.failed_attempts or user.locked_until:
        # Unguessable, unlike a code: a valid passkey ends a count of wrong attempts.
        UserModel.objects.filter(pk=user.pk).update(failed_attempts=0, locked_until=None)
        user.failed_attempts, user.locked_until = 0, None
    for field, value in changes.items():
        setattr(passkey, field, value)
    return passkey


def _passkey_rejected(user: UserModel, *, cloned: bool = False) -> PasskeyRejected:
    # One count of wrong attempts for every factor: the refusal that reaches the limit of wrong
    # codes locks the TOTP codes as a wrong code would, and is recorded (and mailed) as such.
    rejected = _rejected(user)
    return PasskeyRejected(locked=rejected.locked, cloned=cloned, codes_locked=rejected.codes_locked)


def unlock(*, user: UserModel) -> None:
    UserModel.objects.filter(pk=user.pk).update(failed_attempts=0, locked_until=None)


def normalise_recovery_code(code: str) -> str | None:
    """The code in canonical form if it has the shape of a recovery code, else None.

    Spaces, dashes and letter case are forgiven; six digits are a TOTP code, never this.
    """
    # Codes are shown in lower case, where "l" looks like "1" and "I": read as one symbol.
    canonical = "".join(code.split()).replace("-", "").upper().translate(_LOOK_ALIKES)
    if len(canonical) == 10 and all(symbol in RECOVERY_ALPHABET for symbol in canonical):
        return canonical
    return None


def new_recovery_code() -> str:
    symbols = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10)).lower()
    return f"{symbols[:5]}-{symbols[5:]}"


def _replace_recovery_codes(*, user: UserModel) -> list[str]:
    codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(
        RecoveryCode(user=user, code_hash=crypto.recovery_code_hashes(normalise_recovery_code(code))[0])
        for code in codes
    )
    UserModel.objects.filter(pk=user.pk).update(recovery_codes_left=len(codes))
    return codes


def _use_recovery_code(*, user: UserModel, code: str, now: float) -> None:
    with transaction.atomic():
        # One conditional UPDATE per code: of two requests racing with one code, one finds it unused.
        used = RecoveryCode.objects.filter(
            user=user, code_hash__in=crypto.recovery_code_hashes(code), used_at__isnull=True
        ).update(used_at=as_datetime(now))
        if used:
            UserModel.objects.filter(pk=user.pk).update(
                recovery_codes_left=F("recovery_codes_left") - used, failed_attempts=0, locked_until=None
            )
    if not used:
        raise _rejected(user, proof=Proof.RECOVERY_CODE)


def _clear_totp(*, user: UserModel) -> None:
    UserModel.objects.filter(pk=user.pk).update(otp_enabled=False, otp_verified=False, otp_secret="", pending_secret="")


def _clear_second_factor(*, user: UserModel) -> None:
    """With no factor left: no recovery codes, no lock, no passkey count."""
    RecoveryCode.objects.filter(user=user).delete()
    UserModel.objects.filter(pk=user.pk).update(
        recovery_codes_left=0, passkey_count=0, failed_attempts=0, locked_until=None
    )


def _rejected(user: UserModel, *, proof: Proof | None = None) -> CodeRejected:
    # `_count_attempt` left the count including this attempt on the user object.
    return CodeRejected(
        locked=lock_seconds(user.failed_attempts) is not None,
        codes_locked=user.otp_enabled and user.failed_attempts == settings.TWOFA_CODE_FAILURE_LIMIT,
        proof=proof,
    )


def _refuse_locked_codes(failures: int) -> None:
    # NIST SP 800-63B-4 §3.2.2: at most 100 consecutive failures of one authenticator, ever;
    # the growing delay alone would let guessing go on for as long as an attacker waits.
    if 0 < settings.TWOFA_CODE_FAILURE_LIMIT <= failures:
        raise CodesLocked


def _not_used_since(step: int) -> Q:
    return Q(last_accepted_step__isnull=True) | Q(last_accepted_step__lt=step)


def _checked_step(*, user: UserModel, secret: str, code: str, now: float) -> int:
    """Count the attempt, then look at the code: the time step it matches, or CodeRejected.

    The attempt is counted *before* the code is compared, by a conditional UPDATE that also
    sets the lock, so concurrent guesses cannot slip past the limit between a check and a write.
    A correct code then resets the count (see the callers' UPDATE).
    """
    if user.otp_enabled:  # a first enrolment has no codes in force to lock
        _refuse_locked_codes(user.failed_attempts)
    _count_attempt(user=user, now=now)
    step = totp.matching_step(secret=secret, code=code, now=now, window=settings.TWOFA_VALID_WINDOW)
    if step is None:
        raise _rejected(user)
    return step


def _count_attempt(*, user: UserModel, now: float) -> None:
    """Count one attempt, locking the account when the count reaches the threshold; raise
    LockedOut, without counting, while it is locked.

    A compare-and-swap on the count: the UPDATE applies only if the count is still the one read,
    so every attempt is counted exactly once however many race, and the lock it computes is the
    one for that count. A lost race re-reads the row and tries again.
    """
    moment = as_datetime(now)
    failures, locked_until = user.failed_attempts, user.locked_until
    for _ in range(_COUNT_TRIES):
        _refuse_while_locked(locked_until, moment)
        delay = lock_seconds(failures + 1)
        lock = moment + timedelta(seconds=delay) if delay is not None else None
        # The lock is only ever set or cleared together with a change of the count, so a
        # count still equal to the one read also means the lock state read still holds.
        # The guessing path: one plain statement (rows.py), not a compiled queryset.
        if rows.update(
            UserModel,
            {"failed_attempts": failures + 1, "locked_until": lock},
            ("id", "=", user.pk),
            ("failed_attempts", "=", failures),
        ):
            user.failed_attempts, user.locked_until = failures + 1, lock
            return
        row = UserModel.objects.filter(pk=user.pk).values_list("failed_attempts", "locked_until").first()
        if row is None:  # the account was deleted meanwhile
            raise CodeRejected
        failures, locked_until = row
    # So contended that the count kept moving: refuse this attempt rather than loop on.
    raise LockedOut(retry_after=1)


_COUNT_TRIES = 20


def _refuse_while_locked(locked_until: datetime | None, moment: datetime) -> None:
    if locked_until is not None and locked_until > moment:
        raise LockedOut(retry_after=_seconds_until(locked_until, moment))


def _seconds_until(moment_later: datetime, moment: datetime) -> int:
    return max(1, math.ceil((moment_later - moment).total_seconds()))


def lock_seconds(failures: int) -> int | None:
    """How long `failures` consecutive wrong codes lock an account: None below the threshold,
    then the base delay doubling with each further wrong code, up to the maximum."""
    over = failures - settings.TWOFA_LOCKOUT_THRESHOLD
    if over < 0:
        return None
    return min(settings.TWOFA_LOCKOUT_BASE_SECONDS * 2 ** min(over, 40), settings.TWOFA_LOCKOUT_MAX_SECONDS)


def update_last_login(sender, user, **kwargs):
    """Django's receiver of the same name (user_logged_in), as one plain UPDATE: every login
    runs it."""
    user.last_login = django_timezone.now()
    rows.update(UserModel, {"last_login": user.last_login}, ("id", "=", user.pk))
