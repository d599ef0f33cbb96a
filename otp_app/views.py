"""The API, one thin view per endpoint: validate the body, call a service, shape the answer.

Who may call what is declared by `permission_classes` (see sessions.py); what each error
looks like on the wire is decided in exceptions.py.
"""
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import JsonResponse
from drf_yasg import openapi
from drf_yasg.utils import no_body, swagger_auto_schema
from rest_framework import exceptions, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from . import clock, services, sessions, throttles, totp
from .exceptions import IncorrectCredentials
from .serializers import (
    DisableResponseSerializer,
    FailSerializer,
    GenerateResponseSerializer,
    GenerateSerializer,
    LoginSerializer,
    RegisterSerializer,
    StatusMessageSerializer,
    StatusUserSerializer,
    TokenSerializer,
    UserIdSerializer,
    UserSerializer,
    ValidateResponseSerializer,
    VerifyResponseSerializer,
)


def _fail(description: str) -> openapi.Response:
    return openapi.Response(description, FailSerializer)


NO_SESSION = _fail("No session: log in first")
FOREIGN_ORIGIN = _fail("Cross-site request refused: this origin is not allowed")
PENDING_SESSION = _fail("Pending session (second factor not yet proven), foreign Origin, or a user_id that is not yours")
BAD_INPUT = _fail("Invalid body: malformed JSON, missing or wrong fields; `errors` lists them")
WRONG_CODE = _fail("Token is invalid or user doesn't exist (wrong, expired or already used code)")
LOCKED = _fail("Too many wrong codes: locked, see the Retry-After header")


class ApiView(GenericAPIView):
    """What every endpoint shares: the origin rule, and 405 before anything else."""

    permission_classes = [sessions.TrustedOrigin]

    def initial(self, request, *args, **kwargs):
        # A wrong method is a 405 whoever asks, before sessions or throttles are looked at.
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)

    def validated(self, request) -> dict:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def user_data(self, user) -> dict:
        return UserSerializer(user).data


class FullSessionView(ApiView):
    permission_classes = [sessions.TrustedOrigin, sessions.FullSession]


class RegisterView(ApiView):
    serializer_class = RegisterSerializer
    throttle_classes = [ScopedRateThrottle]
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
            409: _fail("User with that email already exists"),
            429: _fail("Too many registrations from this address"),
        },
    )
    def post(self, request):
        data = self.validated(request)
        services.register(email=data["email"], name=data["name"], password=data["password"])
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
            400: _fail("Incorrect email or password"),
            403: FOREIGN_ORIGIN,
            429: _fail("Too many failed logins for this account or address; see Retry-After"),
        },
    )
    def post(self, request):
        data = self.validated(request)
        throttles.check_password_attempts(request, email=data["email"])
        user = authenticate(request, email=data["email"], password=data["password"])
        if user is None:
            throttles.count_password_failure(request, email=data["email"])
            raise IncorrectCredentials
        sessions.start(request, user, now=clock.now())
        return Response({"status": "success", "user": self.user_data(user)})


class LogoutView(ApiView):
    @swagger_auto_schema(
        operation_summary="End the session",
        tags=["1. account"],
        request_body=no_body,
        responses={200: StatusMessageSerializer, 403: FOREIGN_ORIGIN},
    )
    def post(self, request):
        sessions.end(request)
        return Response({"status": "success", "message": "Logged out"})


class MeView(FullSessionView):
    @swagger_auto_schema(
        operation_summary="The logged-in account",
        tags=["1. account"],
        responses={200: StatusUserSerializer, 401: NO_SESSION, 403: PENDING_SESSION},
    )
    def get(self, request):
        return Response({"status": "success", "user": self.user_data(request.user)})


class GenerateOtpView(FullSessionView):
    serializer_class = GenerateSerializer

    @swagger_auto_schema(
        operation_summary="Start enrolment: a new TOTP secret",
        operation_description="Returns a new secret and its otpauth URL (for a QR code). It takes "
        "effect only once a code from it passes otp/verify; until then an existing secret keeps working.",
        tags=["2. two-factor"],
        responses={200: GenerateResponseSerializer, 400: BAD_INPUT, 401: NO_SESSION, 403: PENDING_SESSION},
    )
    def post(self, request):
        data = self.validated(request)
        user = sessions.own_user(request, data.get("user_id"))
        secret = services.prepare_secret(user=user)
        url = totp.otpauth_url(secret=secret, email=user.email, issuer=settings.TWOFA_ISSUER)
        return Response({"base32": secret, "otpauth_url": url})


class VerifyOtpView(FullSessionView):
    serializer_class = TokenSerializer

    @swagger_auto_schema(
        operation_summary="Finish enrolment: prove the new secret and switch 2FA on",
        tags=["2. two-factor"],
        responses={
            200: VerifyResponseSerializer, 400: WRONG_CODE, 401: NO_SESSION, 403: PENDING_SESSION, 429: LOCKED,
        },
    )
    def post(self, request):
        data = self.validated(request)
        user = sessions.own_user(request, data.get("user_id"))
        user = services.verify_enrolment(user=user, code=data["token"], now=clock.now())
        return Response({"otp_verified": True, "user": self.user_data(user)})


class ValidateOtpView(ApiView):
    serializer_class = TokenSerializer
    permission_classes = [sessions.TrustedOrigin, sessions.PendingOrFullSession]

    @swagger_auto_schema(
        operation_summary="Second step of login: prove a code",
        operation_description="Turns a pending session into a full one (new session key). Each code "
        "is accepted once. Consecutive wrong codes lock the account for a growing delay.",
        tags=["2. two-factor"],
        responses={
            200: ValidateResponseSerializer, 400: WRONG_CODE, 401: NO_SESSION, 403: PENDING_SESSION,
            404: _fail("OTP must be verified first"), 429: LOCKED,
        },
    )
    def post(self, request):
        data = self.validated(request)
        user = sessions.own_user(request, data.get("user_id"))
        services.accept_code(user=user, code=data["token"], now=clock.now())
        sessions.complete_second_factor(request, user)
        return Response({"otp_valid": True})


class DisableOtpView(FullSessionView):
    serializer_class = UserIdSerializer

    @swagger_auto_schema(
        operation_summary="Switch 2FA off",
        operation_description="Removes the secret; logins need only the password afterwards.",
        tags=["2. two-factor"],
        responses={200: DisableResponseSerializer, 400: BAD_INPUT, 401: NO_SESSION, 403: PENDING_SESSION},
    )
    def post(self, request):
        data = self.validated(request)
        user = sessions.own_user(request, data.get("user_id"))
        user = services.disable(user=user)
        return Response({"otp_disabled": True, "user": self.user_data(user)})



def healthz(request):
    """200 when the database (and Redis, when configured) answer; 503 otherwise.

    A plain Django view: no session is read and no throttle counts it, so probes cost little
    and never lock anyone out.
    """
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except DatabaseError:
        checks["database"] = "unavailable"
    if settings.REDIS_URL:
        try:
            cache.get("healthz")
            checks["cache"] = "ok"
        except Exception:  # any failure of the cache client means the cache cannot be used
            checks["cache"] = "unavailable"
    healthy = all(state == "ok" for state in checks.values())
    return JsonResponse({"status": "ok" if healthy else "fail", "checks": checks}, status=200 if healthy else 503)
