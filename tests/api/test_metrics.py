"""/metrics: the counters move as requests happen, under labels from small fixed sets (never an
email, an id or a path); off unless METRICS_ENABLED, and then only for the allowed addresses or
the bearer token. The access rule case by case is in tests/unit/test_metrics.py; the sum over
gunicorn's workers in tests/e2e/test_metrics.py."""

import re
import uuid
from types import SimpleNamespace

import django_ratelimit.core
import pytest
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from otp_app import views
from tests.helpers import (
    INVALID,
    LOGIN,
    LOGOUT,
    ME,
    METRICS,
    PASSKEYS,
    PASSWORD,
    REGISTER,
    add_passkey,
    code_for,
    enrol,
    guess_wrong,
    login,
    pending_login,
    prove_passkey,
    sample,
    samples,
    validate,
    wrong_code,
    wrong_recovery_code,
)
from tests.support.authenticator import SoftwareAuthenticator

# An address the tests write in every field a person types: no label may ever show it.
CANARY = "metrics.canary"
CANARY_EMAIL = f"{CANARY}@example.com"
TOKEN = "t0k3n-" + "x" * 40
OUTSIDER = "203.0.113.7"


@pytest.fixture
def metrics_on(settings):
    """Metrics on. List it before the fixtures that make requests: a client loads the middleware,
    which is left out while metrics are off, at its first request."""
    settings.METRICS_ENABLED = True


def scrape(**extra) -> dict:
    response = APIClient().get(METRICS, **extra)
    assert response.status_code == 200, response.content
    return samples(response.content.decode())


class Counts:
    """The samples before a block of requests, and how much each moved after it."""

    def __init__(self):
        self.before = scrape()
        self.after = None

    def moved(self, name: str, **labels: str) -> float:
        self.after = self.after or scrape()
        return sample(self.after, name, **labels) - sample(self.before, name, **labels)

    def logins(self) -> dict[str, float]:
        outcomes = ("success", "pending", "failed", "throttled")
        return {outcome: self.moved("twofa_logins_total", outcome=outcome) for outcome in outcomes}

    def proofs(self, kind: str) -> tuple[float, float]:
        """(accepted, refused) of one kind of second factor."""
        name = "twofa_second_factor_proofs_total"
        return self.moved(name, kind=kind, outcome="accepted"), self.moved(name, kind=kind, outcome="refused")

    def responses(self, endpoint: str, status: int) -> float:
        return self.moved("twofa_http_responses_total", endpoint=endpoint, status=str(status))

    def timed(self, endpoint: str, method: str) -> float:
        return self.moved("twofa_http_request_duration_seconds_count", endpoint=endpoint, method=method)


# --- Off by default, then for allowed clients only ---------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post", "head"])
@pytest.mark.django_db
def test_metrics_off_are_the_404_of_any_unknown_path(settings, method):
    settings.METRICS_ENABLED = False
    settings.METRICS_BEARER_TOKEN = TOKEN
    client = APIClient()
    off = getattr(client, method)(METRICS, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    unknown = getattr(client, method)("/no-such-page")
    assert off.status_code == unknown.status_code == 404
    assert off.content == unknown.content
    assert off["Content-Type"] == unknown["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_nothing_is_counted_while_metrics_are_off(settings, user):
    settings.METRICS_ENABLED = False
    before = REGISTRY.get_sample_value("twofa_logins_total", {"outcome": "failed"})
    assert login(APIClient(), user.email, "wrong password").status_code == 400
    assert REGISTRY.get_sample_value("twofa_logins_total", {"outcome": "failed"}) == before


@pytest.mark.django_db
def test_loopback_may_read_the_metrics_in_prometheus_text_format(metrics_on, django_assert_num_queries):
    with django_assert_num_queries(0):  # no session, no account: nothing but the counts
        response = APIClient().get(METRICS)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE twofa_logins_total counter" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert not response.cookies


@pytest.mark.django_db
def test_prometheus_is_answered_in_openmetrics_when_it_asks(metrics_on):
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    response = APIClient().get(METRICS, HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().endswith("# EOF\n")


@pytest.mark.parametrize(
    "extra",
    [
        {"REMOTE_ADDR": OUTSIDER},
        {"REMOTE_ADDR": OUTSIDER, "HTTP_AUTHORIZATION": "Bearer wrong-" + "x" * 40},
        # From a proxy on this machine that names its client, while the service reads no proxy header.
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": OUTSIDER},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": OUTSIDER},
    ],
    ids=["outsider", "wrong-token", "through-a-proxy-xff", "through-a-proxy-x-real-ip"],
)
@pytest.mark.django_db
def test_others_are_refused_with_403_json(metrics_on, settings, extra):
    settings.METRICS_BEARER_TOKEN = TOKEN
    response = APIClient().get(METRICS, **extra)
    assert response.status_code == 403
    assert response.json() == {"status": "fail", "message": views.METRICS_REFUSED}


@pytest.mark.django_db
def test_the_bearer_token_opens_the_metrics_from_anywhere(metrics_on, settings):
    settings.METRICS_BEARER_TOKEN = TOKEN
    response = APIClient().get(METRICS, REMOTE_ADDR=OUTSIDER, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200


@pytest.mark.django_db
def test_allowed_networks_replace_loopback(metrics_on, settings):
    settings.METRICS_ALLOWED_ADDRESSES = ["10.0.0.0/8"]
    assert APIClient().get(METRICS, REMOTE_ADDR="10.20.30.40").status_code == 200
    assert APIClient().get(METRICS, REMOTE_ADDR="127.0.0.1").status_code == 403


@pytest.mark.django_db
def test_only_get_and_head_read_the_metrics(metrics_on):
    response = APIClient().post(METRICS)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


# --- Counters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "account, password, outcome",
    [
        ("user", PASSWORD, "success"),
        ("user_with_2fa", PASSWORD, "pending"),
        ("user", "wrong password", "failed"),
        (None, PASSWORD, "failed"),  # no such account
    ],
)
def test_each_login_counts_once_under_its_outcome(metrics_on, db, request, account, password, outcome):
    email = request.getfixturevalue(account).email if account else CANARY_EMAIL
    counts = Counts()
    login(APIClient(), email, password)
    assert counts.logins() == {"success": 0, "pending": 0, "failed": 0, "throttled": 0, outcome: 1}
    assert counts.timed("login", "POST") == 1


def test_a_login_refused_by_the_failed_login_limit_counts_as_throttled_and_429(metrics_on, user, settings, monkeypatch):
    frozen = SimpleNamespace(time=lambda: 1_800_000_000.0)  # no limit window ends mid-test
    monkeypatch.setattr(django_ratelimit.core, "time", frozen)
    settings.TWOFA_LOGIN_FAILURES_PER_ACCOUNT = "2/15m"
    client = APIClient()
    counts = Counts()
    for _ in range(2):
        assert login(client, user.email, "wrong password").status_code == 400
    assert login(client, user.email).status_code == 429
    assert counts.logins() == {"success": 0, "pending": 0, "failed": 2, "throttled": 1}
    assert counts.responses("login", 429) == 1
    assert counts.responses("login", 400) == 2


def test_a_passkey_sign_in_counts_as_a_login(metrics_on, logged_in_client, clock):
    authenticator = SoftwareAuthenticator(origin="http://testserver", rp_id="localhost")
    assert add_passkey(logged_in_client, authenticator).status_code == 201
    counts = Counts()
    assert prove_passkey(APIClient(), authenticator).status_code == 200
    assert counts.logins()["success"] == 1
    assert counts.proofs("passkey") == (1, 0)


def test_a_refused_passkey_counts_as_refused(metrics_on, db):
    counts = Counts()
    response = APIClient().post("/api/auth/passkeys/authentication", {"credential": {"id": "AAAA"}}, format="json")
    assert response.status_code == 400
    assert counts.proofs("passkey") == (0, 1)


def test_wrong_and_right_totp_codes_count_as_refused_and_accepted(metrics_on, pending_client, user_with_2fa, clock):
    counts = Counts()
    assert validate(pending_client, wrong_code(user_with_2fa.otp_secret, clock)).json() == INVALID
    assert validate(pending_client, code_for(user_with_2fa.otp_secret, clock)).status_code == 200
    assert counts.proofs("totp") == (1, 1)
    assert counts.proofs("recovery_code") == (0, 0)
    assert counts.responses("otp-validate", 400) == 1
    assert counts.responses("otp-validate", 200) == 1


def test_recovery_codes_count_under_their_own_kind(metrics_on, logged_in_client, user, clock):
    _secret, verified = enrol(logged_in_client, clock)
    logged_in_client.post(LOGOUT)
    client = pending_login(user.email)
    counts = Counts()
    assert validate(client, wrong_recovery_code(verified["recovery_codes"])).json() == INVALID
    assert validate(client, verified["recovery_codes"][0]).status_code == 200
    assert counts.proofs("recovery_code") == (1, 1)
    assert counts.proofs("totp") == (0, 0)


def test_the_wrong_code_that_locks_counts_one_lockout_and_then_429s(metrics_on, pending_client, user_with_2fa, clock):
    counts = Counts()
    guess_wrong(pending_client, user_with_2fa, clock, 5)  # TWOFA_LOCKOUT_THRESHOLD
    assert validate(pending_client, wrong_code(user_with_2fa.otp_secret, clock)).status_code == 429
    assert counts.moved("twofa_lockouts_total", kind="locked_out") == 1
    assert counts.moved("twofa_lockouts_total", kind="codes_locked") == 0
    assert counts.proofs("totp") == (0, 5)  # the attempt while locked checks no code
    assert counts.responses("otp-validate", 429) == 1


def test_registrations_count_and_a_taken_email_does_not(metrics_on, db):
    counts = Counts()
    body = {"email": CANARY_EMAIL, "name": "Carol", "password": PASSWORD, "passwordConfirm": PASSWORD}
    assert APIClient().post(REGISTER, body, format="json").status_code == 201
    assert APIClient().post(REGISTER, body, format="json").status_code == 409
    assert counts.moved("twofa_registrations_total") == 1
    assert counts.responses("register", 409) == 1


def test_a_503_counts_under_its_endpoint(metrics_on, db, monkeypatch):
    def database_down():
        raise RuntimeError("connection refused")

    monkeypatch.setattr(views, "_query_database", database_down)
    counts = Counts()
    assert APIClient().get("/healthz").status_code == 503
    assert counts.responses("healthz", 503) == 1


@pytest.mark.parametrize(
    "method, path, endpoint, label",
    [
        ("get", ME, "me", "GET"),
        ("get", ME + "/", "me", "GET"),  # the trailing-slash twin counts as its endpoint
        ("delete", f"{PASSKEYS}/{uuid.uuid4()}", "passkey", "DELETE"),  # the route's name, never the id
        ("get", f"/api/auth/{CANARY}", "unmatched", "GET"),
        ("get", f"/{CANARY}", "unmatched", "GET"),
        ("brew", ME, "me", "other"),  # methods are client-typed: known ones only
    ],
)
def test_every_response_is_timed_by_endpoint_and_method(metrics_on, logged_in_client, method, path, endpoint, label):
    counts = Counts()
    if method == "brew":
        logged_in_client.generic("BREW", path)
    else:
        getattr(logged_in_client, method)(path)
    assert counts.timed(endpoint, label) == 1


# --- Labels -----------------------------------------------------------------------------------------

LABEL_VALUES = {
    "outcome": re.compile(r"success|pending|failed|throttled|accepted|refused"),
    "kind": re.compile(r"totp|recovery_code|passkey|locked_out|codes_locked"),
    "method": re.compile(r"GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|other"),
    "status": re.compile(r"[1-5][0-9][0-9]"),
    "endpoint": re.compile(r"[a-z][a-z_-]*(:[a-z][a-z_-]*)*|unmatched"),
    "le": re.compile(r"[0-9.]+|\+Inf"),
}


def test_labels_hold_no_email_id_or_path_only_values_of_small_fixed_sets(metrics_on, logged_in_client, other_user):
    login(APIClient(), CANARY_EMAIL, "wrong password")
    login(APIClient(), other_user.email, "wrong password")
    APIClient().post(REGISTER, {"email": CANARY_EMAIL, "name": CANARY, "password": PASSWORD}, format="json")
    logged_in_client.get(f"/api/auth/{CANARY}?email={CANARY_EMAIL}")
    logged_in_client.patch(f"{PASSKEYS}/{uuid.uuid4()}", {"name": CANARY}, format="json")
    response = APIClient().get(METRICS)
    text = response.content.decode()
    for secret in (CANARY, "example.com", other_user.email, str(other_user.pk), other_user.pk.hex):
        assert secret not in text
    for (name, labels), _value in samples(text).items():
        if name.startswith("twofa_"):
            for label, value in labels:
                assert LABEL_VALUES[label].fullmatch(value), (name, label, value)


def test_a_login_is_timed_under_login_whatever_the_email(metrics_on, user):
    counts = Counts()
    APIClient().post(LOGIN + "/", {"email": CANARY_EMAIL, "password": PASSWORD}, format="json")
    assert counts.timed("login", "POST") == 1
