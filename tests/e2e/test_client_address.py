"""The client address over real HTTP. Without a proxy configured, no header a client writes
changes its limits; with the documented proxy settings every request is answered (never a 500),
a missing or malformed header counting as the proxy's own address, and the header of anyone
who is not the proxy counting for nothing.

Clients at other addresses connect from other loopback addresses (127.0.0.2, 127.0.0.3): the
server's limits are 3 registrations an hour and 3 failed logins per address.
"""

import ipaddress
import itertools

import pytest

from tests.helpers import PASSWORD
from tests.support.http_client import Account, fresh_email, session_from
from tests.support.server import Server, serving

pytestmark = pytest.mark.e2e

LIMITS = {"TWOFA_REGISTER_RATE": "3/hour", "TWOFA_LOGIN_FAILURES_PER_ADDRESS": "3/15m"}
_spoofed = (str(ipaddress.IPv4Address("198.18.0.1") + n) for n in itertools.count())


@pytest.fixture(scope="module")
def no_proxy(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("server"), env={**LIMITS, "RATELIMIT_IP_META_KEY": ""}) as server:
        yield server


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory):
    """The README's proxy settings: nginx on this machine (127.0.0.1, trusted by default) sets X-Real-IP."""
    with serving(
        tmp_path_factory.mktemp("server"), env={**LIMITS, "RATELIMIT_IP_META_KEY": "HTTP_X_REAL_IP"}
    ) as server:
        yield server


def register(server: Server, http, headers: dict | None = None) -> int:
    body = {"email": fresh_email("address"), "name": "E2E", "password": PASSWORD}
    return http.post(server.url + "/api/auth/register", json=body, headers=headers, timeout=60).status_code


def fail_login(server: Server, http, headers: dict | None = None) -> int:
    body = {"email": fresh_email("guess"), "password": "wrong password"}
    return http.post(server.url + "/api/auth/login", json=body, headers=headers, timeout=60).status_code


def spoofing() -> dict:
    """Headers naming another client on every request, as an attacker would send them."""
    return {"X-Forwarded-For": next(_spoofed), "X-Real-IP": next(_spoofed)}


def test_with_no_proxy_a_new_forwarded_for_on_every_request_leaves_the_limits_in_force(no_proxy):
    http = session_from("127.0.0.2")
    assert [register(no_proxy, http, spoofing()) for _ in range(4)] == [201, 201, 201, 429]
    assert [fail_login(no_proxy, http, spoofing()) for _ in range(4)] == [400, 400, 400, 429]


def test_a_logged_in_client_registers_within_its_address_allowance(no_proxy):
    account = Account(no_proxy.url)
    account.http = session_from("127.0.0.3")
    assert account.register().status_code == 201
    assert account.login().status_code == 200
    assert [register(no_proxy, account.http) for _ in range(3)] == [201, 201, 429]


def test_behind_a_proxy_a_missing_or_malformed_header_counts_as_the_proxy_never_a_500(behind_proxy):
    proxy = session_from("127.0.0.1")
    missing_or_malformed = [{}, {"X-Real-IP": ""}, {"X-Real-IP": "not-an-address"}, {"X-Real-IP": "198.51.100.7:4321"}]
    assert [register(behind_proxy, proxy, headers) for headers in missing_or_malformed] == [201, 201, 201, 429]
    assert [fail_login(behind_proxy, proxy, headers) for headers in missing_or_malformed] == [400, 400, 400, 429]


def test_behind_a_proxy_each_client_it_names_has_its_own_allowance(behind_proxy):
    proxy = session_from("127.0.0.1")
    ann, bob = {"X-Real-IP": "198.51.100.1"}, {"X-Real-IP": "2001:db8::b0b"}
    assert [register(behind_proxy, proxy, ann) for _ in range(4)] == [201, 201, 201, 429]
    assert register(behind_proxy, proxy, bob) == 201
    assert [fail_login(behind_proxy, proxy, ann) for _ in range(4)] == [400, 400, 400, 429]
    assert fail_login(behind_proxy, proxy, bob) == 400


def test_behind_a_proxy_the_header_of_a_client_that_is_not_the_proxy_is_ignored(behind_proxy):
    not_the_proxy = session_from("127.0.0.2")
    assert [register(behind_proxy, not_the_proxy, spoofing()) for _ in range(4)] == [201, 201, 201, 429]
    assert [fail_login(behind_proxy, not_the_proxy, spoofing()) for _ in range(4)] == [400, 400, 400, 429]
