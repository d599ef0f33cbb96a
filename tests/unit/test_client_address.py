"""The client's address, as every limit and the audit trail read it: the connection's address,
unless a trusted proxy sends the configured header; headers from anyone else count for nothing,
and a missing or malformed header falls back to the connection, never to an error."""

import pytest
from django.test import RequestFactory

from otp_app.client_address import client_address, limit_key
from tests.helpers import PRODUCTION, manage

CLIENT = "198.51.100.7"
ELSEWHERE = "203.0.113.9"


def request_from(remote_addr: str, **headers: str):
    return RequestFactory().get("/", REMOTE_ADDR=remote_addr, **headers)


@pytest.mark.parametrize(
    "remote_addr, headers, expected",
    [
        (CLIENT, {}, CLIENT),
        (CLIENT, {"HTTP_X_FORWARDED_FOR": ELSEWHERE}, CLIENT),
        (CLIENT, {"HTTP_X_REAL_IP": ELSEWHERE}, CLIENT),
        ("127.0.0.1", {"HTTP_X_FORWARDED_FOR": ELSEWHERE, "HTTP_X_REAL_IP": ELSEWHERE}, "127.0.0.1"),
        ("2001:db8::7", {"HTTP_X_FORWARDED_FOR": ELSEWHERE}, "2001:db8::7"),
        ("::ffff:198.51.100.7", {}, CLIENT),
        ("", {"HTTP_X_FORWARDED_FOR": ELSEWHERE}, None),
    ],
    ids=["plain", "x-forwarded-for", "x-real-ip", "from-localhost", "ipv6", "ipv4-mapped", "unix-socket"],
)
def test_with_no_proxy_configured_only_the_connection_counts(settings, remote_addr, headers, expected):
    settings.RATELIMIT_IP_META_KEY = None
    assert client_address(request_from(remote_addr, **headers)) == expected


@pytest.mark.parametrize(
    "remote_addr, x_real_ip, expected",
    [
        ("127.0.0.1", CLIENT, CLIENT),
        ("::1", CLIENT, CLIENT),
        ("::ffff:127.0.0.1", CLIENT, CLIENT),
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "not-an-address", "127.0.0.1"),
        ("127.0.0.1", f"{CLIENT}:4321", "127.0.0.1"),
        ("127.0.0.1", "999.1.1.1", "127.0.0.1"),
        ("127.0.0.1", " 2001:DB8:0:0::7 ", "2001:db8::7"),
        (ELSEWHERE, CLIENT, ELSEWHERE),
        ("2001:db8::9", CLIENT, "2001:db8::9"),
    ],
    ids=[
        "from-proxy",
        "from-proxy-ipv6",
        "from-proxy-ipv4-mapped",
        "missing",
        "empty",
        "malformed",
        "with-port",
        "out-of-range",
        "ipv6-normalised",
        "untrusted-sender",
        "untrusted-ipv6-sender",
    ],
)
def test_behind_a_proxy_its_header_counts_only_when_it_comes_from_the_proxy(settings, remote_addr, x_real_ip, expected):
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"
    headers = {} if x_real_ip is None else {"HTTP_X_REAL_IP": x_real_ip}
    assert client_address(request_from(remote_addr, **headers)) == expected


@pytest.mark.parametrize(
    "remote_addr, x_forwarded_for, expected",
    [
        ("127.0.0.1", CLIENT, CLIENT),
        ("127.0.0.1", f"6.6.6.6, {CLIENT}", CLIENT),
        ("127.0.0.1", f"garbage, {CLIENT}", CLIENT),
        ("127.0.0.1", f"{CLIENT}, 10.1.2.3", CLIENT),
        ("127.0.0.1", f"6.6.6.6,{CLIENT},10.1.2.3", CLIENT),
        ("127.0.0.1", f"{CLIENT}, garbage", "127.0.0.1"),
        ("127.0.0.1", "10.1.2.4, 10.1.2.3", "10.1.2.4"),
        ("10.1.2.3", "2001:db8::7, 10.1.2.4", "2001:db8::7"),
        (ELSEWHERE, CLIENT, ELSEWHERE),
        (ELSEWHERE, f"{CLIENT}, 10.1.2.3", ELSEWHERE),
    ],
    ids=[
        "one-hop",
        "client-written-left-part",
        "garbage-left-part",
        "two-proxies",
        "no-spaces",
        "malformed-where-a-proxy-wrote",
        "only-proxies",
        "ipv6-client",
        "untrusted-sender",
        "untrusted-sender-naming-a-proxy",
    ],
)
def test_in_a_forwarded_list_the_rightmost_address_that_is_no_trusted_proxy_counts(
    settings, remote_addr, x_forwarded_for, expected
):
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_FORWARDED_FOR"
    settings.TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8"]
    assert client_address(request_from(remote_addr, HTTP_X_FORWARDED_FOR=x_forwarded_for)) == expected


@pytest.mark.parametrize(
    "remote_addr, expected",
    [
        (CLIENT, CLIENT),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::"),
        ("2001:db8:1:3::1", "2001:db8:1:3::"),
        ("", ""),
    ],
    ids=["ipv4-whole", "ipv6-by-its-64", "same-64-same-key", "next-64-next-key", "no-address"],
)
def test_limits_count_ipv6_clients_by_their_64_network(settings, remote_addr, expected):
    settings.RATELIMIT_IP_META_KEY = None
    assert limit_key(request_from(remote_addr)) == expected


@pytest.mark.parametrize(
    "variable, value",
    [
        ("TRUSTED_PROXIES", "127.0.0.1,proxy.example.com"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("RATELIMIT_IP_META_KEY", "X-Real-IP"),
    ],
    ids=["host-name", "bad-network", "header-not-meta-key"],
)
def test_the_service_refuses_to_start_with_proxy_settings_it_cannot_follow(variable, value):
    result = manage("check", **{**PRODUCTION, variable: value})
    assert result.returncode != 0
    assert variable in result.stderr
