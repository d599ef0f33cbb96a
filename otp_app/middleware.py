"""The service's middleware: what every response carries, what is refused before any view runs,
who the session's user is and whether staff may enter the admin, and outages, answered as JSON.

Every response has a request id and a Content-Security-Policy. A body in a charset other than
UTF-8 is a 415. A database or cache that cannot be reached is a 503, never a 500 page: security
checks need both (sessions, lockouts, failed-login counters), so without them the service fails
closed, and recovers by itself when they return.
"""

import re
import time
import uuid
import weakref

from django.conf import settings
from django.contrib import auth
from django.contrib.admin.sites import all_sites
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.exceptions import MiddlewareNotUsed
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.functional import SimpleLazyObject

from . import backends, logs, metrics

try:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    _UNAVAILABLE = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)
except ImportError:  # redis is only needed with REDIS_URL
    _UNAVAILABLE = (OperationalError, InterfaceError)

# What a proxy's X-Request-ID may be to be kept: short, and nothing that could end a header or
# a log line or be read as markup (uuids, hex, base64url: nginx's $request_id, Heroku's).
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_for(incoming: str | None) -> str:
    """The id of a request: the proxy's `incoming` X-Request-ID when it is sane, else a new one."""
    if incoming is not None and REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Names each request (`request.request_id`, its log lines' and security events' request id)
    and returns the name in the X-Request-ID header of every answer, so that a proxy's log, the
    service's and the audit trail can be joined. First in MIDDLEWARE: every response passes it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request_id_for(request.headers.get("X-Request-ID"))
        token = logs.request_id.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            logs.request_id.reset(token)
        response["X-Request-ID"] = request.request_id
        return response


class MetricsMiddleware:
    """Counts every response by endpoint and status, and times it (metrics.py). Second in
    MIDDLEWARE: the time is all the service's, refusals and outages included. Not loaded unless
    METRICS_ENABLED, so that metrics off cost nothing."""

    def __init__(self, get_response):
        if not settings.METRICS_ENABLED:
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        metrics.observe(request, response.status_code, time.perf_counter() - started)
        return response


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


UTF8_ONLY = "Request bodies must be UTF-8: send charset=utf-8 or no charset"


def is_utf8(charset: str | None) -> bool:
    """Whether a Content-Type's charset parameter (None when absent) names UTF-8."""
    return charset is None or charset.strip().lower() in ("utf-8", "utf8")


class Utf8RequestsMiddleware:
    """Refuses a request whose Content-Type names a charset other than UTF-8, with 415 JSON,
    before anything reads its body or query string.

    Django would decode forms and query strings with any codec Python has by that name, and DRF
    the JSON: with `charset=bz2` or `zlib` a body of a few hundred bytes, well under the size
    limit, expands to hundreds of megabytes, and other codecs end in a 500. (The servers'
    requests, otp_app/handlers.py, never take that encoding at all.) JSON is UTF-8 (RFC 8259
    section 8.1), and browsers send forms in the page's UTF-8.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_utf8(request.content_params.get("charset")):
            return JsonResponse({"status": "fail", "message": UTF8_ONLY}, status=415)
        return self.get_response(request)


# Content-Security-Policy by path prefix. Everything (the API, the schema, errors, static files)
# loads nothing, runs nothing and may be framed by no one, but for the four kinds of pages people
# open, which load what they need from this origin only. Their scripts are files, never inline
# and never eval; Swagger UI and ReDoc write <style> elements as they run (insertion-query's
# keyframes, ReDoc's styled-components), so their styles may be inline.
NOTHING = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
ADMIN = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SWAGGER_UI = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# ReDoc also searches in a worker made from a blob: URL, and shows Redocly's logo from their CDN.
REDOC = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https://cdn.redoc.ly; connect-src 'self'; worker-src blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# The demo page shows the QR code of otp/generate, a data: URI.
DEMO = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_POLICIES = (("/admin/", ADMIN), ("/swagger/", SWAGGER_UI), ("/redoc/", REDOC), ("/demo/", DEMO))


class ContentSecurityPolicyMiddleware:
    """Sets the Content-Security-Policy of every response (Django 5.2 has none of its own)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", policy_for(request.path))
        return response


def policy_for(path: str) -> str:
    for prefix, policy in PAGE_POLICIES:
        if path.startswith(prefix):
            return policy
    return NOTHING


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's, with the account read along with the session's row: `request.user` is found as
    Django finds it (`auth.get_user`: the session's backend, its password-hash check)."""

    def process_request(self, request):
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _user_of(request))


def _user_of(request):
    if not hasattr(request, "_cached_user"):
        with backends.reading(request.session):
            request._cached_user = auth.get_user(request)
    return request._cached_user


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's, telling the session which request it serves: a new session's row records the
    client's address and user agent (GET sessions), read only when such a row is written."""

    def process_request(self, request):
        super().process_request(request)
        request.session.request = weakref.ref(request)


class AdminEnrolmentMiddleware:
    """Keeps staff accounts without a second factor out of the admin, with TWOFA_REQUIRED_FOR_STAFF
    or TWOFA_REQUIRED on: every admin page but login and logout answers 403 with a page that says
    to enrol first. They may still log in, and so enrol through the API with that session.

    Admin pages are found by the URL's application namespace ("admin", whatever the site's name
    or prefix), not by path. After AuthenticationMiddleware; off, it costs two attribute reads.
    A project embedding this app adds it to its MIDDLEWARE as well.
    """

    OPEN = ("login", "logout")  # the admin's URL names a staff account without 2FA may use

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not (settings.TWOFA_REQUIRED_FOR_STAFF or settings.TWOFA_REQUIRED):
            return None
        match = request.resolver_match
        if not match.app_names or match.app_names[-1] != "admin" or match.url_name in self.OPEN:
            return None
        user = request.user
        if user.is_authenticated and user.is_staff and not user.two_factor_enabled:
            return enrolment_required_page(request, site_name=match.namespaces[-1])
        return None


def enrolment_required_page(request, *, site_name: str) -> TemplateResponse:
    site = next((site for site in all_sites if site.name == site_name), None)
    request.current_app = site_name
    context = {
        **(site.each_context(request) if site is not None else {}),
        "title": "Two-factor authentication is required: enrol first",
        "demo_url": _demo_url(),
    }
    return TemplateResponse(request, "admin/enrolment_required.html", context, status=403)


def _demo_url() -> str | None:
    if not settings.TWOFA_DEMO_PAGE:
        return None
    try:
        return reverse("demo")
    except NoReverseMatch:  # a project embedding this app without the page
        return None
