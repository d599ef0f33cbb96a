"""Who may call what: the session states each endpoint needs, the second factor an account may
be required to enrol first, the account a body may name, and the origin rule that refuses
cross-site requests."""

from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import exceptions, permissions

from . import session_state
from .models import UserModel


class FullSession(permissions.BasePermission):
    message = "Complete two-factor authentication first: send a code to otp/validate"

    def has_permission(self, request, view):
        if request.auth is None:
            return False  # DRF answers 401 for an unauthenticated request
        return request.auth == session_state.FULL


class PendingOrFullSession(permissions.BasePermission):
    def has_permission(self, request, view):
        return request.auth in (session_state.PENDING, session_state.FULL)


ENROLMENT_REQUIRED = "Two-factor authentication is required: enrol first"


def enrolment_required(user) -> bool:
    """Whether `user` must enrol a second factor (TOTP or a passkey) before anything else."""
    return settings.TWOFA_REQUIRED and not user.two_factor_enabled


class SecondFactorEnrolled(permissions.BasePermission):
    """With TWOFA_REQUIRED on, an account without a second factor may call only the views that
    enrol one: those that say `allowed_before_enrolment = True` (here me, otp/generate,
    otp/verify and the passkey registration endpoints); every other view answers 403
    "Two-factor authentication is required: enrol first". Off, it lets everything through.

    It judges accounts, not session states: put it after the permission that requires a login
    (`FullSession`, or DRF's `IsAuthenticated` in a project's own views), so that anonymous
    requests still get their 401. A project embedding this app reuses it on its own views:

        permission_classes = [IsAuthenticated, SecondFactorEnrolled]

    and marks the views its people enrol with `allowed_before_enrolment = True`.
    """

    message = ENROLMENT_REQUIRED

    def has_permission(self, request, view):
        if not settings.TWOFA_REQUIRED or getattr(view, "allowed_before_enrolment", False):
            return True  # off, or an enrolment view: no account is read
        return not (request.user.is_authenticated and enrolment_required(request.user))


def own_user(request, user_id) -> UserModel:
    """The session's user; a `user_id` in the body may only name that same account."""
    if user_id is not None and str(user_id) != str(request.user.pk):
        raise exceptions.PermissionDenied("user_id does not belong to the logged-in account")
    return request.user


def trusted_origins() -> set[str]:
    return {origin_of(url) for url in settings.TWOFA_TRUSTED_ORIGINS}


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class TrustedOrigin(permissions.BasePermission):
    """Refuse state-changing requests sent by a page of a foreign origin.

    Browsers send `Origin` with every cross-origin request and with every POST; pages cannot
    forge it. So: no `Origin` (Postman, Insomnia, curl) passes, the API's own origin (Swagger
    UI) and the configured front ends pass, anything else is a cross-site request and fails.
    The session cookie is SameSite=Lax as a second wall.
    """

    message = "Cross-site request refused: this origin is not allowed"

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return True
        # Read from META: `request.headers` would first build a dict of every header.
        origin = request.META.get("HTTP_ORIGIN")
        if origin is None:
            # No Origin: a non-browser client, unless the browser says the request is cross-site
            # (a Referer from elsewhere, or Fetch Metadata).
            if request.META.get("HTTP_SEC_FETCH_SITE") == "cross-site":
                raise exceptions.PermissionDenied(self.message)
            referer = request.META.get("HTTP_REFERER")
            if referer is None:
                return True
            origin = origin_of(referer)
        if origin.lower() == origin_of(request.build_absolute_uri("/")) or origin.lower() in trusted_origins():
            return True
        # Raised here rather than returned: DRF would turn a refusal of an anonymous request into
        # "credentials were not provided", which is not what happened.
        raise exceptions.PermissionDenied(self.message)
