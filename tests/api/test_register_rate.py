"""The registration limit stops bulk sign-ups from one address without ever making a developer,
or an office behind one address, wait an hour: 20 a minute by default."""

import pytest
from rest_framework.test import APIClient

from otp_app import throttles
from tests.helpers import PASSWORD, REGISTER


@pytest.fixture
def throttle_clock(monkeypatch):
    """The throttle's clock, held still and moved by the test."""
    clock = {"now": 1_800_000_000.0}
    monkeypatch.setattr(throttles.RegisterThrottle, "timer", lambda self: clock["now"])
    return clock


def register(client, number: int):
    body = {"email": f"person{number}@example.com", "name": "Person", "password": PASSWORD}
    return client.post(REGISTER, body, format="json")


def test_twenty_registrations_a_minute_then_a_wait_of_at_most_a_minute(db, throttle_clock):
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    assert [register(client, number).status_code for number in range(20)] == [201] * 20

    refused = register(client, 20)

    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    throttle_clock["now"] += 60
    assert register(client, 21).status_code == 201


def test_another_address_has_its_own_allowance(db, throttle_clock):
    office = APIClient(REMOTE_ADDR="203.0.113.9")
    for number in range(20):
        register(office, number)

    assert register(APIClient(REMOTE_ADDR="203.0.113.10"), 99).status_code == 201
