"""Who may read /metrics, case by case, and under which endpoint each path counts; the settings'
defaults and the values that stop the service at start."""

import pytest
from django.test import RequestFactory
from django.urls import Resolver404, resolve

from otp_app import metrics
from tests.helpers import PRODUCTION, manage

TOKEN = "a-token-of-forty-characters-0123456789ab"
LOOPBACK = ["127.0.0.1", "::1"]


@pytest.mark.parametrize(
    "remote, headers, allowed, meta_key, token, may",
    [
        ("127.0.0.1", {}, LOOPBACK, None, "", True),
        ("::1", {}, LOOPBACK, None, "", True),
        ("::ffff:127.0.0.1", {}, LOOPBACK, None, "", True),  # IPv4 on a dual-stack socket
        ("203.0.113.7", {}, LOOPBACK, None, "", False),
        ("10.1.2.3", {}, ["10.0.0.0/8"], None, "", True),
        ("127.0.0.1", {}, [], None, "", False),  # no address at all: the token only
        # A proxy on this machine relays someone, and the service reads no proxy header: refused,
        # whoever it names and whichever header it uses.
        ("127.0.0.1", {"HTTP_X_FORWARDED_FOR": "203.0.113.7"}, LOOPBACK, None, "", False),
        ("127.0.0.1", {"HTTP_X_FORWARDED_FOR": "127.0.0.1"}, LOOPBACK, None, "", False),
        ("127.0.0.1", {"HTTP_X_REAL_IP": "203.0.113.7"}, LOOPBACK, None, "", False),
        ("127.0.0.1", {"HTTP_FORWARDED": "for=203.0.113.7"}, LOOPBACK, None, "", False),
        ("::ffff:127.0.0.1", {"HTTP_X_REAL_IP": "203.0.113.7"}, LOOPBACK, None, "", False),
        # The proxy's header is read (RATELIMIT_IP_META_KEY): the client it names decides.
        ("127.0.0.1", {"HTTP_X_REAL_IP": "203.0.113.7"}, LOOPBACK, "HTTP_X_REAL_IP", "", False),
        ("127.0.0.1", {"HTTP_X_REAL_IP": "10.1.2.3"}, ["10.0.0.0/8"], "HTTP_X_REAL_IP", "", True),
        # ...but a proxy that sends another header than the one read names nobody: refused.
        ("127.0.0.1", {"HTTP_X_FORWARDED_FOR": "203.0.113.7"}, LOOPBACK, "HTTP_X_REAL_IP", "", False),
        # A client that writes the header itself, not from a trusted proxy: its own address counts.
        ("203.0.113.7", {"HTTP_X_REAL_IP": "127.0.0.1"}, LOOPBACK, "HTTP_X_REAL_IP", "", False),
        # The token, from anywhere; nothing else that looks like it.
        ("203.0.113.7", {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}, LOOPBACK, None, TOKEN, True),
        ("203.0.113.7", {"HTTP_AUTHORIZATION": f"bearer  {TOKEN} "}, LOOPBACK, None, TOKEN, True),
        ("203.0.113.7", {"HTTP_AUTHORIZATION": f"Bearer {TOKEN[:-1]}"}, LOOPBACK, None, TOKEN, False),
        ("203.0.113.7", {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}x"}, LOOPBACK, None, TOKEN, False),
        ("203.0.113.7", {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"}, LOOPBACK, None, TOKEN, False),
        ("203.0.113.7", {"HTTP_AUTHORIZATION": "Bearer "}, LOOPBACK, None, "", False),  # no token set
        ("203.0.113.7", {"HTTP_AUTHORIZATION": "Bearer é"}, LOOPBACK, None, TOKEN, False),
    ],
)
def test_who_may_read_the_metrics(settings, remote, headers, allowed, meta_key, token, may):
    settings.METRICS_ALLOWED_ADDRESSES = allowed
    settings.RATELIMIT_IP_META_KEY = meta_key
    settings.METRICS_BEARER_TOKEN = token
    request = RequestFactory().get("/metrics", REMOTE_ADDR=remote, **headers)
    assert metrics.may_scrape(request) is may


@pytest.mark.parametrize(
    "path, endpoint",
    [
        ("/api/auth/login", "login"),
        ("/api/auth/login/", "login"),
        ("/api/auth/otp/validate/", "otp-validate"),
        ("/api/auth/passkeys/0b4f1d1e-3f43-4a49-9a1c-3c1e8a3c2d10", "passkey"),
        ("/api/auth/passkeys/0b4f1d1e-3f43-4a49-9a1c-3c1e8a3c2d10/", "passkey"),
        ("/api/auth/no-such-endpoint", "unmatched"),
        ("/healthz", "healthz"),
        ("/metrics", "metrics"),
        ("/admin/", "admin:index"),
        ("/swagger.json", "schema-json"),
        ("/no-such-page", "unmatched"),
    ],
)
def test_each_path_counts_under_its_urls_name_never_itself(path, endpoint):
    request = RequestFactory().get(path)
    try:
        request.resolver_match = resolve(path)
    except Resolver404:
        request.resolver_match = None
    assert metrics.endpoint_of(request) == endpoint


def test_metrics_are_off_by_default_and_only_loopback_may_read_them():
    script = "from django.conf import settings as s; print(s.METRICS_ENABLED, *s.METRICS_ALLOWED_ADDRESSES)"
    result = manage("shell", "-c", script, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["False", "127.0.0.1", "::1"]


@pytest.mark.parametrize(
    "variable, value, error",
    [
        ("METRICS_BEARER_TOKEN", "short", "METRICS_BEARER_TOKEN must be 32 or more ASCII characters"),
        ("METRICS_ALLOWED_ADDRESSES", "127.0.0.1,everyone", "METRICS_ALLOWED_ADDRESSES"),
    ],
)
def test_a_guessable_token_or_an_address_that_is_none_stops_the_service(variable, value, error):
    result = manage("check", **PRODUCTION, METRICS_ENABLED="true", **{variable: value})
    assert result.returncode != 0
    assert error in result.stderr
