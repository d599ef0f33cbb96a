"""A database or cache that cannot be reached is a 503 JSON answer, never a 500 page.

Security checks need both (sessions, lockouts, failed-login counters), so without them the
service refuses the request: it fails closed, and recovers by itself when they return.
"""
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

try:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    _UNAVAILABLE = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)
except ImportError:  # redis is only needed with REDIS_URL
    _UNAVAILABLE = (OperationalError, InterfaceError)

RETRY_AFTER_SECONDS = 5


def is_unavailable(error: BaseException | None) -> bool:
    return isinstance(error, _UNAVAILABLE)


def unavailable_response() -> JsonResponse:
    response = JsonResponse(
        {"status": "fail", "message": "Service temporarily unavailable, try again shortly"}, status=503
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class ServiceUnavailableMiddleware:
    """Turns storage outages raised by views into 503 (see exceptions.server_error for the rest)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if is_unavailable(exception):
            return unavailable_response()
        return None
