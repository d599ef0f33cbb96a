"""The one error envelope: every error the API gives is `{"status": "fail", "message": str}`.

Django REST framework's own errors (parsing, authentication, permissions, methods, throttles),
the services' domain errors and Django's 404/400/500 pages for API paths all pass through here.
Validation errors add `"errors": {field: [messages]}`.
"""

import math
import sys

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from . import crypto, passkeys, services, throttles
from .middleware import is_unavailable, unavailable_response


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large"
    default_code = "too_large"


PASSKEY_NOT_ACCEPTED = "Passkey was not accepted"

# Domain errors of services.py, passkeys.py and throttles.py, and what each means on the wire.
_DOMAIN_ERRORS = {
    services.EmailTaken: (status.HTTP_409_CONFLICT, "User with that email already exists"),
    # Before CodeRejected, which it is: counted as a wrong code, worded for passkeys.
    services.PasskeyRejected: (status.HTTP_400_BAD_REQUEST, PASSKEY_NOT_ACCEPTED),
    passkeys.Refused: (status.HTTP_400_BAD_REQUEST, PASSKEY_NOT_ACCEPTED),
    services.PasskeyTaken: (status.HTTP_409_CONFLICT, "This passkey is already registered"),
    services.PasskeyNotFound: (status.HTTP_404_NOT_FOUND, "Passkey not found"),
    services.SessionNotFound: (status.HTTP_404_NOT_FOUND, "Session not found"),
    services.NoPasskeys: (status.HTTP_404_NOT_FOUND, "No passkey is registered for this account"),
    services.CodeRejected: (status.HTTP_400_BAD_REQUEST, "Token is invalid or user doesn't exist"),
    services.NotEnrolled: (status.HTTP_404_NOT_FOUND, "OTP must be verified first"),
    services.NoSecretToVerify: (status.HTTP_400_BAD_REQUEST, "No OTP secret to verify: call otp/generate first"),
    services.LockedOut: (status.HTTP_429_TOO_MANY_REQUESTS, "Too many wrong codes. Try again in {retry_after} seconds"),
    services.CodesLocked: (
        status.HTTP_429_TOO_MANY_REQUESTS,
        "Too many wrong codes: sign in with a recovery code, or ask an administrator to unlock the account",
    ),
    crypto.SecretUnreadable: (
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "Two-factor secrets cannot be read: the encryption keys are misconfigured",
    ),
    throttles.TooManyPasswordFailures: (
        status.HTTP_429_TOO_MANY_REQUESTS,
        "Too many failed login attempts. Try again in {retry_after} seconds",
    ),
}

INCORRECT_CREDENTIALS = "Incorrect email or password"


class IncorrectCredentials(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = INCORRECT_CREDENTIALS


class IncorrectPassword(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Incorrect password"


def fail(message: str, **extra) -> dict:
    return {"status": "fail", "message": message, **extra}


def handle_exception(exc, context):
    """DRF's EXCEPTION_HANDLER."""
    for error_class, (status_code, message) in _DOMAIN_ERRORS.items():
        if isinstance(exc, error_class):
            retry_after = getattr(exc, "retry_after", None)
            response = Response(fail(message.format(retry_after=retry_after)), status=status_code)
            if retry_after is not None:
                response["Retry-After"] = str(retry_after)
            return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: logged by Django, answered by `server_error`
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        response.data = fail(_summary(errors), errors=errors)
    elif isinstance(exc, exceptions.Throttled):
        wait = math.ceil(exc.wait) if exc.wait is not None else None
        message = f"Too many requests. Try again in {wait} seconds" if wait else "Too many requests"
        response.data = fail(message)
    else:
        response.data = fail(_text(exc.detail))
    return response


def _field_errors(detail) -> dict:
    if isinstance(detail, dict):
        return {field: _messages(value) for field, value in detail.items()}
    return {"non_field_errors": _messages(detail)}


def _messages(value) -> list[str]:
    if isinstance(value, dict):
        return [f"{key}: {message}" for key, inner in value.items() for message in _messages(inner)]
    if isinstance(value, list):
        return [message for item in value for message in _messages(item)]
    return [str(value)]


def _summary(errors: dict) -> str:
    # Clients show `message` to people: one readable line, the first problem of each field.
    parts = []
    for field, messages in errors.items():
        first = messages[0] if messages else "invalid"
        parts.append(first if field == "non_field_errors" else f"{field}: {first}")
    return "; ".join(parts) or "Invalid input"


def _text(detail) -> str:
    if isinstance(detail, (list, dict)):
        return "; ".join(_messages(detail))
    return str(detail)


# Django-level handlers, for what never reaches a DRF view (unknown paths, bad Host headers).
@csrf_exempt  # a POST to an unknown API path is a 404, not Django's HTML CSRF page
def not_found(request, exception=None):
    return JsonResponse(fail("Not found"), status=404)


def bad_request(request, exception=None):
    return JsonResponse(fail("Bad request"), status=400)


def server_error(request):
    # Django calls this inside its `except` block, so the error is at hand: an outage raised
    # outside a view (the session middleware saving, say) is still a 503.
    if is_unavailable(sys.exc_info()[1]):
        return unavailable_response()
    return JsonResponse({"status": "error", "message": "Internal server error"}, status=500)
