"""Logins at the admin leave the same trace as API logins: successes, failures and the lockout
that wrong codes cause are security events, marked `via: admin`."""

import pytest
from django.test import Client

from otp_app.models import SecurityEvent
from tests.helpers import admin_login, code_for, is_logged_in, make_user, wrong_code

Kind = SecurityEvent.Kind


def events(kind) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(kind=kind))


def test_an_admin_login_is_recorded(superuser, clock):
    client = Client()
    admin_login(client, "root@example.com")
    assert is_logged_in(client)

    [event] = events(Kind.LOGIN_SUCCEEDED)
    assert event.user == superuser
    assert event.detail == {"via": "admin", "second_factor": "off"}


def test_an_admin_login_with_password_and_code_is_recorded(staff_with_2fa, clock):
    admin_login(Client(), "staff@example.com", otp_token=code_for(staff_with_2fa.otp_secret, clock))

    [event] = events(Kind.LOGIN_SUCCEEDED)
    assert event.detail == {"via": "admin", "second_factor": "proven"}


@pytest.mark.parametrize("email", ["root@example.com", "nobody@example.com"])
def test_a_failed_admin_login_is_recorded(superuser, clock, email):
    admin_login(Client(), email, password="wrong password")

    [event] = events(Kind.LOGIN_FAILED)
    assert event.email == email
    assert event.user == (superuser if email == superuser.email else None)
    assert event.detail == {"via": "admin"}
    assert not events(Kind.LOGIN_SUCCEEDED)


def test_a_non_staff_account_at_the_admin_is_a_failed_login(db, clock):
    person = make_user("ann@example.com", "Ann")
    admin_login(Client(), "ann@example.com")

    [event] = events(Kind.LOGIN_FAILED)
    assert event.user == person


def test_wrong_codes_that_lock_a_staff_account_at_the_admin_are_recorded(staff_with_2fa, clock, settings):
    for _ in range(settings.TWOFA_LOCKOUT_THRESHOLD):
        admin_login(Client(), "staff@example.com", otp_token=wrong_code(staff_with_2fa.otp_secret, clock))

    [event] = events(Kind.LOCKED_OUT)
    assert event.user == staff_with_2fa
    assert event.detail == {"via": "admin"}
    assert not events(Kind.LOGIN_SUCCEEDED)
