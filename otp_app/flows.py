"""What each request does, between a view and the rules: throttle, call a service, change the
session, record the event.

Views parse the body and shape the answer; services.py keeps every rule without HTTP. The
re-authentication rule for changes of factors lives here, in `reauthenticate`.
"""

from django.conf import settings
from django.contrib import auth
from django.http.request import split_domain_port
from rest_framework import exceptions
from webauthn.helpers import bytes_to_base64url

from . import audit, backends, challenges, clock, metrics, passkeys, services, session_state, throttles
from .exceptions import IncorrectCredentials, IncorrectPassword
from .models import Passkey, SecurityEvent, UserModel
from .permissions import enrolment_required, origin_of
from .serializers import check_password_rules

Kind = SecurityEvent.Kind
REAUTHENTICATE_TO_DISABLE = "Confirm with a code: send a current token to turn two-factor authentication off"
REAUTHENTICATE_TO_REPLACE = (
    "Confirm with a code: send a current token of your authenticator to otp/generate to replace it"
)
REAUTHENTICATE_TO_ADD_PASSKEY = (
    "Confirm with a code: prove your second factor again (a code to otp/validate, or a passkey) to add a passkey"
)
REAUTHENTICATE_TO_CHANGE_PASSWORD = (
    "Confirm with a code: send a current token or a recovery code, or prove your second factor again "
    "with a passkey, to change the password"
)
REAUTHENTICATE_TO_REMOVE_PASSKEY = (
    "Confirm with a code: send a current token, or prove your second factor again with a passkey, to remove a passkey"
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
    session_state.begin_login(request.session, method=session_state.PASSWORD, now=clock.now())
    if user.two_factor_enabled:
        session_state.begin_pending(
            request.session, user_id=str(user.pk), password_hash=user.get_session_auth_hash(), now=clock.now()
        )
    else:
        auth.login(request, user, backend=backends.PATH)
    audit.record(
        request, Kind.LOGIN_SUCCEEDED, user=user, second_factor="pending" if user.two_factor_enabled else "off"
    )
    return user


def logout(request) -> None:
    auth.logout(request)


def prove_second_factor(request, *, user: UserModel, code: str) -> services.Proof:
    """otp/validate: a TOTP or recovery code turns a pending (or full) session full, new key."""
    proof = _check_code(request, services.accept_code, user=user, code=code)
    _second_factor_proven(request, user=user, method=proof.value)
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
    replacing = user.two_factor_enabled and bool(user.pending_secret)
    if replacing:
        reauthenticate(request, user=user, code=None, refusal=REAUTHENTICATE_TO_REPLACE)
    with factor_change(request, user=user):
        enrolment = _check_code(request, services.verify_enrolment, user=user, code=code)
        if not replacing:  # the first factor, just proven; or a code of the secret in force
            session_state.mark_second_factor_proven(request.session, now=clock.now())
        kind = Kind.OTP_ENABLED if enrolment.switched_on else Kind.SECRET_REENROLLED
        audit.record(request, kind, user=enrolment.user)
    return enrolment


def disable(request, *, user: UserModel, code: str | None) -> UserModel:
    reauthenticate(request, user=user, code=code, refusal=REAUTHENTICATE_TO_DISABLE)
    if not user.otp_enabled:
        return services.disable(user=user)  # nothing in force: nothing changes that others should know
    with factor_change(request, user=user):
        user = services.disable(user=user)
        audit.record(request, Kind.OTP_DISABLED, user=user)
    return user


def regenerate_recovery_codes(request, *, user: UserModel, code: str) -> list[str]:
    with factor_change(request, user=user):
        codes = _check_code(request, services.regenerate_recovery_codes, user=user, code=code)
        audit.record(request, Kind.RECOVERY_CODES_REGENERATED, user=user)
    return codes


def change_password(request, *, user: UserModel, current_password: str, new_password: str, code: str | None) -> None:
    """POST password: the current password proves the person (a wrong one counts as a failed
    login), the new one passes the validators, and with 2FA on the re-authentication rule holds
    (`code` may be a recovery code). This session stays, under a new key; every other ends."""
    attempt = throttles.count_password_attempt(request, email=user.email)
    if not user.check_password(current_password):
        audit.record_failed_login(request, email=user.email, user=user, via="password change")
        raise IncorrectPassword
    attempt.forgive()
    check_password_rules(new_password, user=user, field="new_password")
    reauthenticate(request, user=user, code=code, refusal=REAUTHENTICATE_TO_CHANGE_PASSWORD, recovery=True)
    with factor_change(request, user=user):
        services.set_password(user=user, password=new_password)
        audit.record(request, Kind.PASSWORD_CHANGED, user=user)
    auth.update_session_auth_hash(request, user)


def factor_change(request, *, user: UserModel):
    """services.factor_change, keeping this request's session."""
    return services.factor_change(user=user, keep=request.session.row_key)


def sessions(request, *, user: UserModel) -> list[services.SessionSummary]:
    return services.live_sessions(user=user, current=request.session.row_key, now=clock.now())


def end_session(request, *, user: UserModel, session_id: str) -> None:
    """DELETE sessions/<id>: one of the account's sessions ends; this one, as a logout."""
    current = services.end_session(user=user, session_id=session_id, current=request.session.row_key, now=clock.now())
    audit.record(request, Kind.SESSIONS_ENDED, user=user, ended=1, current=current)
    if current:
        auth.logout(request)


def end_other_sessions(request, *, user: UserModel) -> int:
    ended = services.end_sessions(user=user, keep=request.session.row_key)
    audit.record(request, Kind.SESSIONS_ENDED, user=user, ended=ended, current=False)
    return ended


def session_info(request, *, user: UserModel) -> dict:
    """SESSION_INFO of `me`: when and how this session authenticated, and until when it counts as
    re-authenticated. Read from the session alone."""
    at, methods, proven_at = session_state.login_info(request.session)
    until = session_state.reauthenticated_until(request.session, now=clock.now())
    return {
        "authenticated_at": _moment(at if at is not None else request.session.started_at),
        "second_factor_at": _moment(proven_at),
        "methods": methods,
        "reauthenticated_until": _moment(until),
        "enrolment_required": enrolment_required(user),
    }


def _moment(at: float | None):
    return None if at is None else clock.as_datetime(at)


def reauthenticate(request, *, user: UserModel, code: str | None, refusal: str, recovery: bool = False) -> None:
    """The re-authentication rule, for every change of an account's factors: with 2FA on, the
    session must have proven the second factor within TWOFA_REAUTH_SECONDS, or `code` must be a
    current code of the factor in force (which then counts as that proof); with `recovery`, also
    a recovery code, which stands in for any factor. Someone who finds a logged-in browser, or
    steals its cookie, can change nothing with it alone."""
    if not user.two_factor_enabled or session_state.second_factor_recent(request.session, now=clock.now()):
        return
    if not code or not (user.otp_enabled or (recovery and services.normalise_recovery_code(code) is not None)):
        raise exceptions.PermissionDenied(refusal)  # passkeys alone: a passkey, or a recovery code
    proof = _check_code(request, services.accept_code, user=user, code=code, recovery=recovery)
    session_state.mark_second_factor_proven(request.session, now=clock.now(), method=proof.value)


def passkey_registration_options(request, *, user: UserModel) -> dict:
    """passkeys/registration/options: a challenge for a new passkey of this account."""
    reauthenticate(request, user=user, code=None, refusal=REAUTHENTICATE_TO_ADD_PASSKEY)
    challenge = challenges.issue(
        request.session, purpose=challenges.REGISTRATION, user_id=str(user.pk), now=clock.now()
    )
    return passkeys.creation_options(
        user=user,
        user_handle=services.passkey_user_handle(user=user),
        challenge=challenge,
        exclude=list(user.passkeys.values_list("credential_id", flat=True)),
    )


def add_passkey(request, *, user: UserModel, credential: dict, name: str) -> services.PasskeyAdded:
    """passkeys/registration: the browser's answer to that challenge becomes a passkey. The first
    second factor of an account switches 2FA on and proves it, as otp/verify does."""
    reauthenticate(request, user=user, code=None, refusal=REAUTHENTICATE_TO_ADD_PASSKEY)
    challenge = challenges.take(request.session, purpose=challenges.REGISTRATION, user_id=str(user.pk), now=clock.now())
    new = passkeys.verify_registration(credential, challenge=challenge, origins=webauthn_origins(request))
    with factor_change(request, user=user):
        added = services.add_passkey(user=user, new=new, name=name)
        if added.switched_on:
            session_state.mark_second_factor_proven(request.session, now=clock.now())
        audit.record(request, Kind.PASSKEY_ADDED, user=added.user, passkey=str(added.passkey.pk))
    return added


def remove_passkey(request, *, user: UserModel, passkey_id, code: str | None) -> UserModel:
    reauthenticate(request, user=user, code=code, refusal=REAUTHENTICATE_TO_REMOVE_PASSKEY)
    with factor_change(request, user=user):
        user, switched_off = services.remove_passkey(user=user, passkey_id=passkey_id)
        audit.record_passkey_removed(request, user=user, passkey_id=passkey_id, switched_off=switched_off)
    return user


def passkey_authentication_options(request) -> dict:
    """passkeys/authentication/options: a challenge for the session's state. Pending or full: one
    of that account's passkeys must answer; anonymous: any passkey the authenticator holds for
    this site, with user verification (it stands in for the password too)."""
    purpose, user = _passkey_purpose(request)
    allow = [] if user is None else list(user.passkeys.values_list("credential_id", "transports"))
    if user is not None and not allow:
        raise services.NoPasskeys
    challenge = challenges.issue(request.session, purpose=purpose, user_id=_id_of(user), now=clock.now())
    return passkeys.request_options(challenge=challenge, allow=allow, user_verification=user is None)


def authenticate_with_passkey(request, *, credential: dict) -> UserModel:
    """passkeys/authentication: the session becomes full, as with otp/validate (a sign-in, a
    second factor, or a full session's fresh proof). A refusal counts as a wrong code against the
    session's account, or for a sign-in against the account of the credential when one has it;
    the answer is the same either way."""
    purpose, user = _passkey_purpose(request)
    now = clock.now()
    try:
        challenge = challenges.take(request.session, purpose=purpose, user_id=_id_of(user), now=now)
    except passkeys.Refused:
        challenge = None  # still an attempt: it counts
    try:
        claim = passkeys.claim(credential)
    except passkeys.Refused:
        claim = None
    passkey = services.find_passkey(claim.credential_id, with_account=user is None) if claim is not None else None
    if user is None and passkey is not None and passkey.user.is_active:
        user = passkey.user
    if user is None:  # nothing to count against: an unknown credential, or no credential at all
        audit.record(request, Kind.PASSKEY_REFUSED, reason="unknown credential")
        raise services.PasskeyRejected

    def verify(public_key: bytes) -> passkeys.Verified:
        if challenge is None:
            raise passkeys.Refused("no challenge")
        if purpose == challenges.SIGN_IN and claim.user_handle != user.webauthn_user_handle:
            raise passkeys.Refused("user handle of another account")
        return passkeys.verify_assertion(
            credential,
            challenge=challenge,
            origins=webauthn_origins(request),
            public_key=public_key,
            user_verification=purpose == challenges.SIGN_IN,
        )

    try:
        passkey = services.accept_passkey(
            user=user, passkey=passkey, verify=verify, challenge=bytes_to_base64url(challenge or b""), now=now
        )
    except services.PasskeyRejected as rejected:
        audit.record(request, Kind.PASSKEY_REFUSED, user=user, possibly_cloned=rejected.cloned)
        audit.record_lock(request, rejected, user=user)
        raise
    if purpose == challenges.SIGN_IN:
        # A new login: what this browser proved before it (a pending login that timed out, of this
        # account or another) is no part of it.
        session_state.begin_login(request.session, method=services.Proof.PASSKEY.value, now=now)
    _second_factor_proven(request, user=user, method=services.Proof.PASSKEY.value)
    events = [(Kind.PASSKEY_USED, {"passkey": str(passkey.pk), "purpose": purpose})]
    if purpose == challenges.SIGN_IN:
        events.insert(0, (Kind.LOGIN_SUCCEEDED, {"second_factor": "passkey"}))
    audit.record_all(request, events, user=user)
    return user


def rename_passkey(request, *, user: UserModel, passkey_id, name: str) -> Passkey:
    return services.rename_passkey(user=user, passkey_id=passkey_id, name=name)


def webauthn_origins(request) -> list[str]:
    """The origins whose pages may use this site's passkeys: the configured, and the API's own
    when the request's host is one ALLOWED_HOSTS names exactly. The Host header is the client's
    to choose: under a pattern (`.example.com`) a phisher relaying an answer signed on a page of
    another subdomain would name that page's host, and its origin would pass as the API's."""
    origins = [origin_of(origin) for origin in settings.TWOFA_WEBAUTHN_ORIGINS]
    host, _port = split_domain_port(request.get_host())
    if host in {name.lower() for name in settings.ALLOWED_HOSTS}:
        origins.append(origin_of(request.build_absolute_uri("/")))
    return origins


def _passkey_purpose(request) -> tuple[str, UserModel | None]:
    if request.auth == session_state.FULL:
        return challenges.STEP_UP, request.user
    if request.auth == session_state.PENDING:
        return challenges.SECOND_FACTOR, request.user
    return challenges.SIGN_IN, None


def _id_of(user: UserModel | None) -> str | None:
    return None if user is None else str(user.pk)


def _second_factor_proven(request, *, user: UserModel, method: str) -> None:
    """The session becomes full for `user`, under a new key, with the second factor proven now."""
    session_state.end_pending(request.session)
    if auth.SESSION_KEY in request.session:
        request.session.cycle_key()  # auth.login rotates the key itself only for a new login
    auth.login(request, user, backend=backends.PATH)
    session_state.mark_second_factor_proven(request.session, now=clock.now(), method=method)


def _check_code(request, call, *, user: UserModel, **kwargs):
    """Run a service that checks a code; the attempt that locks the account is recorded, and
    every code checked is counted."""
    try:
        result = call(user=user, now=clock.now(), **kwargs)
    except services.CodeRejected as rejected:
        metrics.count_code(rejected.proof, accepted=False)
        audit.record_lock(request, rejected, user=user)
        raise
    # Enrolment and new recovery codes take a TOTP code only; accept_code says which it took.
    metrics.count_code(result if isinstance(result, services.Proof) else services.Proof.TOTP, accepted=True)
    return result
