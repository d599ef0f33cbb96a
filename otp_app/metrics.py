"""Prometheus metrics: how logins, second factors, locks and registrations turn out, and how long
each endpoint takes; and who may read them at /metrics. Nothing is counted unless METRICS_ENABLED.

Every label comes from a small fixed set (outcomes, kinds of factor, URL names, HTTP methods,
status codes), never from what a client sent: no email, id, path or header. Under gunicorn each
worker writes its counts to files in PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py makes it) and a
scrape adds up every worker's; elsewhere (runserver, tests) the process's own registry answers.

Where each count is taken: logins, registrations, lockouts and passkeys from their security
events (`count_event`, a receiver that apps.py connects); codes, which do not all record an
event, where they are checked (flows.py, admin.py); throttled logins where the limit refuses them
(throttles.py); responses and their time in middleware.MetricsMiddleware.
"""

import functools
import hmac
import ipaddress
import os

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, disable_created_metrics, multiprocess
from prometheus_client.exposition import choose_encoder

from .client_address import client_address
from .models import SecurityEvent
from .services import Proof

Kind = SecurityEvent.Kind

# The `_created` series of each counter: worth nothing to an alert, and absent under gunicorn.
disable_created_metrics()

LOGINS = Counter(
    "twofa_logins",
    "Password logins and passkey sign-ins, by outcome: success (a full session), pending (the "
    "password proven, a second factor to come), failed, throttled (refused by the failed-login limits)",
    ["outcome"],
)
SECOND_FACTOR_PROOFS = Counter(
    "twofa_second_factor_proofs",
    "Second factors checked, by kind (totp, recovery_code, passkey) and outcome (accepted, refused)",
    ["kind", "outcome"],
)
LOCKOUTS = Counter(
    "twofa_lockouts",
    "Accounts locked by a wrong code: locked_out (a lock for a while), codes_locked (the "
    "authenticator's codes refused until a recovery code or an unlock)",
    ["kind"],
)
REGISTRATIONS = Counter("twofa_registrations", "Accounts registered")
RESPONSES = Counter(
    "twofa_http_responses",
    "Responses, by endpoint (the URL's name, or unmatched) and status code",
    ["endpoint", "status"],
)
LATENCY = Histogram(
    "twofa_http_request_duration_seconds",
    "Time from the request reaching the service to its response, by endpoint (the URL's name, or unmatched) and method",
    ["endpoint", "method"],
)

UNMATCHED = "unmatched"  # a path no named URL pattern matches: one label value for all of them
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other: "other"

# Each label value made once: a series exists at 0 from the start (an alert can compare it), and
# counting is a dictionary lookup.
_LOGINS = {outcome: LOGINS.labels(outcome) for outcome in ("success", "pending", "failed", "throttled")}
_PROOFS = {
    (proof, accepted): SECOND_FACTOR_PROOFS.labels(proof.value, "accepted" if accepted else "refused")
    for proof in Proof
    for accepted in (True, False)
}
_LOCKOUTS = {kind: LOCKOUTS.labels(kind.value) for kind in (Kind.LOCKED_OUT, Kind.CODES_LOCKED)}
_responses = {}
_latencies = {}

COUNTED_EVENTS = (
    Kind.REGISTERED,
    Kind.LOGIN_SUCCEEDED,
    Kind.LOGIN_FAILED,
    Kind.LOCKED_OUT,
    Kind.CODES_LOCKED,
    Kind.PASSKEY_USED,
    Kind.PASSKEY_REFUSED,
)


def count_event(sender, event: SecurityEvent, **kwargs) -> None:
    """Count a security event of COUNTED_EVENTS: the receiver of their signals."""
    if not settings.METRICS_ENABLED:
        return
    kind = event.kind
    if kind == Kind.LOGIN_SUCCEEDED:
        _LOGINS["pending" if event.detail.get("second_factor") == "pending" else "success"].inc()
    elif kind == Kind.LOGIN_FAILED:
        _LOGINS["failed"].inc()
    elif kind == Kind.REGISTERED:
        REGISTRATIONS.inc()
    elif kind in _LOCKOUTS:
        _LOCKOUTS[kind].inc()
    elif kind == Kind.PASSKEY_USED:
        _PROOFS[Proof.PASSKEY, True].inc()
    elif kind == Kind.PASSKEY_REFUSED:
        _PROOFS[Proof.PASSKEY, False].inc()


def count_code(proof: Proof, *, accepted: bool) -> None:
    """Count a TOTP or recovery code checked (passkeys are counted from their events)."""
    if settings.METRICS_ENABLED:
        _PROOFS[proof, accepted].inc()


def count_throttled_login() -> None:
    if settings.METRICS_ENABLED:
        _LOGINS["throttled"].inc()


def observe(request, status: int, seconds: float) -> None:
    """Count a response and its time (middleware.MetricsMiddleware)."""
    endpoint = endpoint_of(request)
    method = request.method if request.method in METHODS else "other"
    timer = _latencies.get((endpoint, method))
    if timer is None:
        timer = _latencies.setdefault((endpoint, method), LATENCY.labels(endpoint, method))
    timer.observe(seconds)
    counter = _responses.get((endpoint, status))
    if counter is None:
        counter = _responses.setdefault((endpoint, status), RESPONSES.labels(endpoint, str(status)))
    counter.inc()


def endpoint_of(request) -> str:
    """The name of the URL pattern that `request` matched (with its namespace: `admin:index`), or
    UNMATCHED: never the path itself, which the client chose."""
    match = request.resolver_match
    if match is None:  # no pattern matched (a 404), or the answer came before (static files)
        return UNMATCHED
    if match.url_name is not None:
        return match.view_name
    # The API's paths with a trailing slash are unnamed twins of the documented ones.
    return ENDPOINT_NAMES.get(getattr(match.func, "view_class", None), UNMATCHED)


# View class -> URL name of the API's endpoints, filled by urls.py (which imports the views, whose
# flows count through this module: this module imports neither).
ENDPOINT_NAMES: dict = {}


# --- /metrics ---------------------------------------------------------------------------------
# Headers by which a proxy names the client it relays.
FORWARDING_HEADERS = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP")


def may_scrape(request) -> bool:
    """Whether `request` may read the metrics: it bears METRICS_BEARER_TOKEN, or its client
    address (client_address.py) is one of METRICS_ALLOWED_ADDRESSES."""
    return _bears_token(request) or _from_allowed_address(request)


def _bears_token(request) -> bool:
    token = settings.METRICS_BEARER_TOKEN
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return (
        bool(token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(credentials.strip().encode(), token.encode())  # in constant time
    )


def _from_allowed_address(request) -> bool:
    address = client_address(request)
    if address is None:
        return False
    if address == _connection_address(request) and any(header in request.META for header in FORWARDING_HEADERS):
        # A proxy relayed the request, and client_address did not read whom for (no
        # RATELIMIT_IP_META_KEY, or the proxy not among TRUSTED_PROXIES): the address is the
        # proxy's, on the same machine as likely as not, and the client could be anyone.
        return False
    allowed = _networks(tuple(settings.METRICS_ALLOWED_ADDRESSES))
    return any(ipaddress.ip_address(address) in network for network in allowed)


def _connection_address(request) -> str | None:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "").strip())
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        return str(address.ipv4_mapped)  # as client_address writes it
    return str(address)


@functools.lru_cache(maxsize=4)
def _networks(addresses: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(address, strict=False) for address in addresses)


def exposition(accept: str) -> tuple[bytes, str]:
    """Every metric in the format `accept` asks for (Prometheus's text format by default), and
    its content type: under gunicorn the sum of every worker's, those since replaced too."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        registry = REGISTRY
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type
