"""What each request does, between a view and the rules: throttle, call a service, change the
session, record the event.

Views parse the body and shape the answer; services.py keeps every rule without HTTP. The
re-authentication rule for changes of factors lives here, in `reauthenticate`.
"""

from django.contrib import auth
from rest_framework import exceptions

from . import audit, backends, clock, services, session_state, throttles
from .exceptions import IncorrectCredentials
from .models import SecurityEvent, UserModel

Kind = SecurityEvent.Kind
REAUTHENTICATE_TO_DISABLE = "Confirm with a code: send a current token to turn two-factor authentication off"
REAUTHENTICATE_TO_REPLACE = (
    "Confirm with a code: send a current token of your authenticator to otp/generate to replace it"
)


def register(request, *, email: str, name: str, password: str) -> UserModel:
    user = services.register(email=email, name=name, password=password)
    audit.record(request, Kind.REGISTERED, user=user)
    return user


def login(request, *, email: str, password: str) -> UserModel:
    """Prove the password and open the session it earns: full without 2FA, pending with it."""
    attempt = throttles.count_password_attempt(request, email=email)
    user = auth.authenticate(request, email=email, password=password)
    if user is None:
        audit.record_failed_login(request, email=email)
        raise IncorrectCredentials
    attempt.forgive()
    request.session.flush()  # a new key, and nothing left over from whoever used this browser
    if user.otp_enabled:
        session_state.begin_pending(
            request.session, user_id=str(user.pk), password_hash=user.get_session_auth_hash(), now=clock.now()
        )
    else:
        auth.login(request, user, backend=backends.PATH)
    audit.record(request, Kind.LOGIN_SUCCEEDED, user=user, second_factor="pending" if user.otp_enabled else "off")
    return user


def logout(request) -> None:
    auth.logout(request)


def prove_second_factor(request, *, user: UserModel, code: str) -> services.Proof:
    """otp/validate: a TOTP or recovery code turns a pending (or full) session full, new key."""
    proof = _check_code(request, services.accept_code, user=user, code=code)
    session_state.end_pending(request.session)
    if auth.SESSION_KEY in request.session:
        request.session.cycle_key()  # auth.login rotates the key itself only for a new login
    auth.login(request, user, backend=backends.PATH)
    session_state.mark_second_factor_proven(request.session, now=clock.now())
    if proof is services.Proof.RECOVERY_CODE:
        user.refresh_from_db(fields=["recovery_codes_left"])
        audit.record(request, Kind.RECOVERY_CODE_USED, user=user, recovery_codes_left=user.recovery_codes_left)
    return proof


def start_enrolment(request, *, user: UserModel, code: str | None) -> str:
    """otp/generate: a new secret, which replaces one in force only once otp/verify proves it."""
    reauthenticate(request, user=user, code=code, refusal=REAUTHENTICATE_TO_REPLACE)
    return services.prepare_secret(user=user)


def finish_enrolment(request, *, user: UserModel, code: str) -> services.Enrolment:
    """otp/verify: a code of the prepared secret switches 2FA on with it, or replaces the secret
    in force. A code of a secret being enrolled proves that secret only, never the person: with a
    factor in force, replacing it falls under `reauthenticate`, and proves nothing."""
    replacing = user.otp_enabled and bool(user.pending_secret)
    if replacing:
        reauthenticate(request, user=user, code=None, refusal=REAUTHENTICATE_TO_REPLACE)
    enrolment = _check_code(request, services.verify_enrolment, user=user, code=code)
    if not replacing:  # the first factor, just proven; or a code of the secret in force
        session_state.mark_second_factor_proven(request.session, now=clock.now())
    audit.record(request, Kind.OTP_ENABLED if enrolment.switched_on else Kind.SECRET_REENROLLED, user=enrolment.user)
    return enrolment


def disable(request, *, user: UserModel, code: str | None) -> UserModel:
    reauthenticate(request, user=user, code=code, refusal=REAUTHENTICATE_TO_DISABLE)
    was_enabled = user.otp_enabled
    user = services.disable(user=user)
    if was_enabled:
        audit.record(request, Kind.OTP_DISABLED, user=user)
    return user


def regenerate_recovery_codes(request, *, user: UserModel, code: str) -> list[str]:
    codes = _check_code(request, services.regenerate_recovery_codes, user=user, code=code)
    audit.record(request, Kind.RECOVERY_CODES_REGENERATED, user=user)
    return codes


def reauthenticate(request, *, user: UserModel, code: str | None, refusal: str) -> None:
    """The re-authentication rule, for every change of an account's factors: with 2FA on, the
    session must have proven the second factor within TWOFA_REAUTH_SECONDS, or `code` must be a
    current code of the factor in force (which then counts as that proof). Someone who finds a
    logged-in browser, or steals its cookie, can change nothing with it alone."""
    if not user.otp_enabled or session_state.second_factor_recent(request.session, now=clock.now()):
        return
    if not code:
        raise exceptions.PermissionDenied(refusal)
    _check_code(request, services.accept_code, user=user, code=code, recovery=False)
    session_state.mark_second_factor_proven(request.session, now=clock.now())


def _check_code(request, call, *, user: UserModel, **kwargs):
    """Run a service that checks a code; the attempt that locks the account is recorded."""
    try:
        return call(user=user, now=clock.now(), **kwargs)
    except services.CodeRejected as rejected:
        audit.record_lock(request, rejected, user=user)
        raise
