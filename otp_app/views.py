"""The API, one thin view per endpoint: validate the body, call one flow, shape the answer.

Who may call what is declared by `permission_classes` (permissions.py); what each request does
is in flows.py; what each error looks like on the wire is decided in exceptions.py.
"""

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt
from drf_yasg import openapi
from drf_yasg.utils import no_body, swagger_auto_schema
from rest_framework import exceptions, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from . import flows, metrics, permissions, qr, throttles, totp
from .exceptions import not_found
from .openapi import (
    BAD_INPUT,
    FOREIGN_ORIGIN,
    LOCKED,
    NO_SESSION,
    NOT_ENROLLED,
    PENDING_SESSION,
    WRONG_CODE,
    Metadata,
    fail,
)
from .serializers import (
    DisableResponseSerializer,
    DisableSerializer,
    EndOthersResponseSerializer,
    GenerateResponseSerializer,
    GenerateSerializer,
    HealthSerializer,
    LoginSerializer,
    MeResponseSerializer,
    PasskeyAddedResponseSerializer,
    PasskeyAuthenticationSerializer,
    PasskeyListResponseSerializer,
    PasskeyRegistrationSerializer,
    PasskeyRemoveSerializer,
    PasskeyRenameSerializer,
    PasskeyResponseSerializer,
    PasskeySerializer,
    PasswordChangeSerializer,
    RecoveryCodesResponseSerializer,
    RegisterSerializer,
    SessionListResponseSerializer,
    SessionSerializer,
    StatusMessageSerializer,
    StatusOnlySerializer,
    StatusUserSerializer,
    TokenSerializer,
    UserSerializer,
    ValidateResponseSerializer,
    VerifyResponseSerializer,
    WebAuthnOptionsSerializer,
    validated_data,
)


class ApiView(GenericAPIView):
    """What every endpoint shares: the origin rule, and 405 before anything else."""

    permission_classes = [permissions.TrustedOrigin]
    metadata_class = Metadata

    def finalize_response(self, request, response, *args, **kwargs):
        # Answers carry secrets, recovery codes and account data: no cache may keep any of them.
        add_never_cache_headers(response)
        return super().finalize_response(request, response, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        # A wrong method is a 405 whoever asks, before sessions or throttles are looked at.
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)

    def validated(self, request) -> dict:
        return validated_data(self.get_serializer_class(), request.data)

    def user_data(self, user) -> dict:
        return UserSerializer(user).data


class FullSessionView(ApiView):
    """An endpoint for a full session, and (with TWOFA_REQUIRED) of an account with a second
    factor; the views that enrol one say `allowed_before_enrolment = True`."""

    permission_classes = [permissions.TrustedOrigin, permissions.FullSession, permissions.SecondFactorEnrolled]
    allowed_before_enrolment = False


class RegisterView(ApiView):
    serializer_class = RegisterSerializer
    throttle_classes = [throttles.RegisterThrottle]
    throttle_scope = "register"

    @swagger_auto_schema(
        operation_summary="Create an account",
        operation_description="Passwords are checked by the configured password validators. "
        "Emails are trimmed and lower-cased; one email (in any letter case) is one account.",
        tags=["1. account"],
        responses={
            201: StatusMessageSerializer,
            400: BAD_INPUT,
            403: FOREIGN_ORIGIN,
            409: fail("User with that email already exists"),
            429: fail("Too many registrations from this address"),
        },
    )
    def post(self, request):
        data = self.validated(request)
        flows.register(request, email=data["email"], name=data["name"], password=data["password"])
        return Response(
            {"status": "success", "message": "Registered successfully, please login"},
            status=status.HTTP_201_CREATED,
        )


class LoginView(ApiView):
    serializer_class = LoginSerializer

    @swagger_auto_schema(
        operation_summary="Log in with email and password",
        operation_description="Sets the session cookie. Without 2FA the session is full. With 2FA "
        "(`user.otp_enabled`) it is *pending*: only otp/validate is allowed until a code is proven.",
        tags=["1. account"],
        responses={
            200: StatusUserSerializer,
            400: fail("Incorrect email or password"),
            403: FOREIGN_ORIGIN,
            429: fail("Too many failed logins for this account or address; see Retry-After"),
        },
    )
    def post(self, request):
        data = self.validated(request)
        user = flows.login(request, email=data["email"], password=data["password"])
        return Response({"status": "success", "user": self.user_data(user)})


class LogoutView(ApiView):
    allowed_before_enrolment = True  # open to any session anyway; one of the views TWOFA_REQUIRED leaves open

    @swagger_auto_schema(
        operation_summary="End the session",
        tags=["1. account"],
        request_body=no_body,
        responses={200: StatusMessageSerializer, 403: FOREIGN_ORIGIN},
    )
    def post(self, request):
        flows.logout(request)
        return Response({"status": "success", "message": "Logged out"})


class MeView(FullSessionView):
    allowed_before_enrolment = True

    @swagger_auto_schema(
        operation_summary="The logged-in account",
        tags=["1. account"],
        operation_description="`session` says when and how this session authenticated, and until "
        "when changes of factors need no code (`reauthenticated_until`).",
        responses={200: MeResponseSerializer, 401: NO_SESSION, 403: PENDING_SESSION},
    )
    def get(self, request):
        user = request.user
        return Response(
            {"status": "success", "user": self.user_data(user), "session": flows.session_info(request, user=user)}
        )


SESSION = SessionSerializer()  # one instance shapes every listed session


class SessionListView(FullSessionView):
    @swagger_auto_schema(
        operation_summary="The account's live sessions",
        operation_description="Each browser or client logged in to this account (pending ones "
        "too), the most recently used first. `id` names a session for DELETE sessions/<id>; it is "
        "not its key and opens nothing.",
        tags=["1. account"],
        responses={200: SessionListResponseSerializer, 401: NO_SESSION, 403: PENDING_SESSION},
    )
    def get(self, request):
        sessions = flows.sessions(request, user=request.user)
        return Response({"status": "success", "sessions": [SESSION.to_representation(s) for s in sessions]})


class SessionDetailView(FullSessionView):
    @swagger_auto_schema(
        operation_summary="End a session",
        operation_description="The session ends at once, on every instance: its next request is "
        "answered like one without a session (401). Ending this request's own session logs out.",
        tags=["1. account"],
        request_body=no_body,
        responses={
            200: StatusOnlySerializer,
            401: NO_SESSION,
            403: PENDING_SESSION,
            404: fail("Session not found"),
        },
    )
    def delete(self, request, session_id):
        flows.end_session(request, user=request.user, session_id=session_id)
        return Response({"status": "success"})


class EndOtherSessionsView(FullSessionView):
    @swagger_auto_schema(
        operation_summary="End every other session",
        operation_description="Every session of this account but this one ends at once.",
        tags=["1. account"],
        request_body=no_body,
        responses={200: EndOthersResponseSerializer, 401: NO_SESSION, 403: PENDING_SESSION},
    )
    def post(self, request):
        return Response({"status": "success", "ended": flows.end_other_sessions(request, user=request.user)})


class PasswordView(FullSessionView):
    serializer_class = PasswordChangeSerializer

    @swagger_auto_schema(
        operation_summary="Change the password",
        operation_description="`current_password` proves it is you: a wrong one is `Incorrect "
        "password` and counts as a failed login. `new_password` must pass the password rules. With "
        "2FA on, unless this session proved the second factor within the last 15 minutes, send a "
        "current TOTP code or a recovery code in `token`. Every other session of the account ends; "
        "this one stays, under a new key.",
        tags=["1. account"],
        request_body=PasswordChangeSerializer,
        responses={
            200: StatusMessageSerializer,
            400: fail("Incorrect password, new_password refused by the password rules, or a wrong code"),
            401: NO_SESSION,
            403: fail("Pending session, foreign Origin, or a code is needed"),
            429: fail("Too many failed login attempts, or too many wrong codes"),
        },
    )
    def post(self, request):
        data = self.validated(request)
        flows.change_password(
            request,
            user=request.user,
            current_password=data["current_password"],
            new_password=data["new_password"],
            code=data.get("token"),
        )
        return Response({"status": "success", "message": "Password changed"})


class GenerateOtpView(FullSessionView):
    allowed_before_enrolment = True
    serializer_class = GenerateSerializer

    @swagger_auto_schema(
        operation_summary="Start enrolment: a new TOTP secret",
        operation_description="Returns a new secret, its otpauth URL, and that URL as a QR code "
        "(`qr_code`, an SVG data URI an `<img>` can show). The secret takes effect only once a code "
        "from it passes otp/verify; until then an existing secret keeps working. With 2FA on, "
        "replacing the secret needs this session to have proven the second factor within the last "
        "15 minutes (TWOFA_REAUTH_SECONDS), or a current code of the authenticator in force in `token`.",
        tags=["2. two-factor"],
        responses={
            200: GenerateResponseSerializer,
            400: WRONG_CODE,
            401: NO_SESSION,
            403: fail("Pending session, foreign Origin, a user_id that is not yours, or a code is needed"),
            429: LOCKED,
        },
    )
    def post(self, request):
        data = self.validated(request)
        user = permissions.own_user(request, data.get("user_id"))
        secret = flows.start_enrolment(request, user=user, code=data.get("token"))
        url = totp.otpauth_url(secret=secret, email=user.email, issuer=settings.TWOFA_ISSUER)
        return Response({"base32": secret, "otpauth_url": url, "qr_code": qr.svg_data_uri(url)})


class VerifyOtpView(FullSessionView):
    allowed_before_enrolment = True
    serializer_class = TokenSerializer

    @swagger_auto_schema(
        operation_summary="Finish enrolment: prove the new secret and switch 2FA on",
        operation_description="When this switches 2FA on, the answer also carries `recovery_codes`: "
        "ten single-use codes for a lost phone, shown this once. With 2FA already on, it replaces "
        "the secret in force by the one otp/generate prepared, under the same re-authentication rule "
        "as otp/generate; a code of the new secret proves only that secret.",
        tags=["2. two-factor"],
        responses={
            200: VerifyResponseSerializer,
            400: WRONG_CODE,
            401: NO_SESSION,
            403: fail("Pending session, foreign Origin, a user_id that is not yours, or a code is needed"),
            429: LOCKED,
        },
    )
    def post(self, request):
        data = self.validated(request)
        user = permissions.own_user(request, data.get("user_id"))
        enrolment = flows.finish_enrolment(request, user=user, code=data["token"])
        body = {"otp_verified": True, "user": self.user_data(enrolment.user)}
        if enrolment.recovery_codes:
            body["recovery_codes"] = enrolment.recovery_codes
        return Response(body)


class ValidateOtpView(ApiView):
    serializer_class = TokenSerializer
    permission_classes = [permissions.TrustedOrigin, permissions.PendingOrFullSession]

    @swagger_auto_schema(
        operation_summary="Second step of login: prove a code",
        operation_description="Turns a pending session into a full one (new session key). `token` is "
        "a code of the authenticator app or one of the recovery codes (spaces, dashes and case "
        "forgiven). Each code is accepted once. Consecutive wrong codes, of either kind, lock the "
        "account for a growing delay.",
        tags=["2. two-factor"],
        responses={
            200: ValidateResponseSerializer,
            400: WRONG_CODE,
            401: NO_SESSION,
            403: PENDING_SESSION,
            404: NOT_ENROLLED,
            429: LOCKED,
        },
    )
    def post(self, request):
        data = self.validated(request)
        user = permissions.own_user(request, data.get("user_id"))
        flows.prove_second_factor(request, user=user, code=data["token"])
        return Response({"otp_valid": True})


class DisableOtpView(FullSessionView):
    serializer_class = DisableSerializer

    @swagger_auto_schema(
        operation_summary="Switch 2FA off",
        operation_description="Removes the secret and the recovery codes; logins need only the "
        "password afterwards. Someone who found a logged-in browser must not be able to do this: "
        "unless this session proved the second factor within the last 15 minutes "
        "(TWOFA_REAUTH_SECONDS), send a current code in `token`.",
        tags=["2. two-factor"],
        responses={
            200: DisableResponseSerializer,
            400: WRONG_CODE,
            401: NO_SESSION,
            403: fail("Pending session, foreign Origin, a user_id that is not yours, or a code is needed"),
            429: LOCKED,
        },
    )
    def post(self, request):
        data = self.validated(request)
        user = permissions.own_user(request, data.get("user_id"))
        user = flows.disable(request, user=user, code=data.get("token"))
        return Response({"otp_disabled": True, "user": self.user_data(user)})


class RecoveryCodesView(FullSessionView):
    serializer_class = TokenSerializer

    @swagger_auto_schema(
        operation_summary="Replace the recovery codes",
        operation_description="With a current code of the authenticator app in `token`, replaces all "
        "ten recovery codes and returns the new ones (shown this once).",
        tags=["2. two-factor"],
        responses={
            200: RecoveryCodesResponseSerializer,
            400: WRONG_CODE,
            401: NO_SESSION,
            403: PENDING_SESSION,
            404: NOT_ENROLLED,
            429: LOCKED,
        },
    )
    def post(self, request):
        data = self.validated(request)
        user = permissions.own_user(request, data.get("user_id"))
        codes = flows.regenerate_recovery_codes(request, user=user, code=data["token"])
        return Response({"status": "success", "recovery_codes": codes})


PASSKEY_REFUSED = fail("Passkey was not accepted: a wrong, expired or used challenge, origin or signature")
PASSKEY_CHANGE_REFUSED = fail(
    "Pending session, foreign Origin, or the second factor must be proven again first (Confirm with a code: ...)"
)


class PasskeyRegistrationOptionsView(FullSessionView):
    allowed_before_enrolment = True

    @swagger_auto_schema(
        operation_summary="Start adding a passkey: WebAuthn creation options",
        operation_description="Give `publicKey` to `navigator.credentials.create({publicKey: "
        "PublicKeyCredential.parseCreationOptionsFromJSON(publicKey)})`, then send the result to "
        "passkeys/registration. The challenge belongs to this session, is used once and expires "
        "after TWOFA_WEBAUTHN_TIMEOUT (300 s). With a second factor on, this session must have "
        "proven it within the last 15 minutes (TWOFA_REAUTH_SECONDS).",
        tags=["4. passkeys"],
        request_body=no_body,
        responses={200: WebAuthnOptionsSerializer, 401: NO_SESSION, 403: PASSKEY_CHANGE_REFUSED},
    )
    def post(self, request):
        return Response({"publicKey": flows.passkey_registration_options(request, user=request.user)})


class PasskeyRegistrationView(FullSessionView):
    allowed_before_enrolment = True
    serializer_class = PasskeyRegistrationSerializer

    @swagger_auto_schema(
        operation_summary="Finish adding a passkey",
        operation_description="`credential` is `credential.toJSON()` of what create() gave. The "
        "account's first second factor switches 2FA on: the answer then carries `recovery_codes`, "
        "shown this once, and later logins are pending until a passkey, a code or a recovery code "
        "proves the second factor.",
        tags=["4. passkeys"],
        responses={
            201: PasskeyAddedResponseSerializer,
            400: PASSKEY_REFUSED,
            401: NO_SESSION,
            403: PASSKEY_CHANGE_REFUSED,
            409: fail("This passkey is already registered"),
        },
    )
    def post(self, request):
        data = self.validated(request)
        added = flows.add_passkey(request, user=request.user, credential=data["credential"], name=data.get("name", ""))
        body = {
            "status": "success",
            "passkey": PasskeySerializer(added.passkey).data,
            "user": self.user_data(added.user),
        }
        if added.recovery_codes:
            body["recovery_codes"] = added.recovery_codes
        return Response(body, status=status.HTTP_201_CREATED)


class PasskeyListView(FullSessionView):
    @swagger_auto_schema(
        operation_summary="The account's passkeys",
        tags=["4. passkeys"],
        responses={200: PasskeyListResponseSerializer, 401: NO_SESSION, 403: PENDING_SESSION},
    )
    def get(self, request):
        passkeys = PasskeySerializer(request.user.passkeys.all(), many=True).data
        return Response({"status": "success", "passkeys": passkeys})


class PasskeyDetailView(FullSessionView):
    def get_serializer_class(self):
        return PasskeyRenameSerializer if self.request.method == "PATCH" else PasskeyRemoveSerializer

    @swagger_auto_schema(
        operation_summary="Rename a passkey",
        tags=["4. passkeys"],
        request_body=PasskeyRenameSerializer,
        responses={
            200: PasskeyResponseSerializer,
            400: BAD_INPUT,
            401: NO_SESSION,
            403: PENDING_SESSION,
            404: fail("Passkey not found"),
        },
    )
    def patch(self, request, passkey_id):
        data = self.validated(request)
        passkey = flows.rename_passkey(request, user=request.user, passkey_id=passkey_id, name=data["name"])
        return Response({"status": "success", "passkey": PasskeySerializer(passkey).data})

    @swagger_auto_schema(
        operation_summary="Remove a passkey",
        operation_description="Removing the last second factor (no TOTP, no passkey left) turns 2FA "
        "off and deletes the recovery codes. Unless this session proved the second factor within "
        "the last 15 minutes (TWOFA_REAUTH_SECONDS), send a current TOTP code in `token`, or prove "
        "it again with a passkey (passkeys/authentication) first.",
        tags=["4. passkeys"],
        request_body=PasskeyRemoveSerializer,
        responses={
            200: StatusUserSerializer,
            400: WRONG_CODE,
            401: NO_SESSION,
            403: PASSKEY_CHANGE_REFUSED,
            404: fail("Passkey not found"),
            429: LOCKED,
        },
    )
    def delete(self, request, passkey_id):
        data = self.validated(request)
        user = flows.remove_passkey(request, user=request.user, passkey_id=passkey_id, code=data.get("token"))
        return Response({"status": "success", "user": self.user_data(user)})


class PasskeyAuthenticationOptionsView(ApiView):
    throttle_classes = [throttles.PasskeySignInThrottle]
    throttle_scope = "passkey-sign-in"

    @swagger_auto_schema(
        operation_summary="Start proving a passkey: WebAuthn request options",
        operation_description="For the session's state: *pending*, a passkey of that account as the "
        "second factor; *none*, a sign-in without a password (any passkey of this site, user "
        "verification required); *full*, a fresh proof of the second factor (before changing "
        "factors). Give `publicKey` to `navigator.credentials.get({publicKey: "
        "PublicKeyCredential.parseRequestOptionsFromJSON(publicKey)})`, then send the result to "
        "passkeys/authentication.",
        tags=["4. passkeys"],
        request_body=no_body,
        responses={
            200: WebAuthnOptionsSerializer,
            404: fail("No passkey is registered for this account"),
            429: fail("Too many passkey sign-ins from this address"),
        },
    )
    def post(self, request):
        return Response({"publicKey": flows.passkey_authentication_options(request)})


class PasskeyAuthenticationView(ApiView):
    serializer_class = PasskeyAuthenticationSerializer
    throttle_classes = [throttles.PasskeyAnswerThrottle]
    throttle_scope = "passkey-sign-in"

    @swagger_auto_schema(
        operation_summary="Prove a passkey: sign in, or the second factor",
        operation_description="`credential` is `credential.toJSON()` of what get() gave. The session "
        "becomes full (new session key), as after otp/validate. A refused passkey counts as a wrong "
        "code: consecutive refusals lock the account like wrong codes. Answers from a session "
        "holding no challenge count towards the sign-in limit per address (429).",
        tags=["4. passkeys"],
        responses={200: StatusUserSerializer, 400: PASSKEY_REFUSED, 429: LOCKED},
    )
    def post(self, request):
        data = self.validated(request)
        user = flows.authenticate_with_passkey(request, credential=data["credential"])
        return Response({"status": "success", "user": self.user_data(user)})


class HealthView(APIView):
    """GET /healthz: 200 when the database (and Redis, when configured) answer; 503 otherwise.

    No authentication, permission or throttle runs: no session is read and nothing is counted,
    so probes cost little and never lock anyone out.
    """

    authentication_classes = []
    permission_classes = []
    throttle_classes = []

    @swagger_auto_schema(
        operation_summary="Health check for load balancers",
        operation_description="Checks that the database, and Redis when configured, answer. "
        "Reads no session and counts against no limit.",
        tags=["3. operations"],
        responses={
            200: openapi.Response("The database (and Redis) answer", HealthSerializer),
            503: openapi.Response("A part is down: see `checks`", HealthSerializer),
        },
    )
    def get(self, request):
        checks = {"database": _answers(_query_database)}
        if settings.REDIS_URL:
            checks["cache"] = _answers(lambda: cache.get("healthz"))
        down = [part for part, state in checks.items() if state != "ok"]
        if down:
            body = {"status": "fail", "message": f"Unavailable: {', '.join(down)}", "checks": checks}
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response({"status": "ok", "checks": checks})


def _query_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _answers(probe) -> str:
    try:
        probe()
        return "ok"
    except Exception:  # any failure of the client, whatever its kind, means the part is down
        return "unavailable"


METRICS_REFUSED = "Metrics are not available to this client"


@csrf_exempt  # off, a POST is the 404 of any unknown path, not Django's HTML CSRF page
def metrics_view(request):
    """GET /metrics: the Prometheus metrics (metrics.py), for the addresses and the token that
    settings allow; with METRICS_ENABLED off, the 404 of any unknown path. No session is read."""
    if not settings.METRICS_ENABLED:
        return not_found(request)
    if not metrics.may_scrape(request):
        return JsonResponse({"status": "fail", "message": METRICS_REFUSED}, status=403)
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse({"status": "fail", "message": "Method not allowed"}, status=405)
        response["Allow"] = "GET, HEAD"
        return response
    body, content_type = metrics.exposition(request.headers.get("Accept", ""))
    response = HttpResponse(body, content_type=content_type)
    add_never_cache_headers(response)
    return response
