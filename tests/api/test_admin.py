"""The Django admin at /admin/: email login, the user list, no secret on show, and a code
required from staff accounts with 2FA on."""

from types import SimpleNamespace

import django_ratelimit.core
import pytest
from django.test import Client, override_settings

from otp_app import services
from otp_app.models import UserModel
from tests.helpers import ADMIN_LOGIN, ADMIN_USERS, PASSWORD, admin_login, code_for, is_logged_in, wrong_code


@pytest.fixture
def browser():
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def admin_client_for(superuser):
    client = Client()
    client.force_login(superuser)
    return client


@pytest.mark.parametrize("email", ["root@example.com", "ROOT@Example.com"])
def test_superuser_without_2fa_logs_in_with_email_and_password(browser, superuser, clock, email):
    response = admin_login(browser, email)

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert is_logged_in(browser)


def test_admin_login_with_a_wrong_password_is_refused(browser, superuser, clock):
    response = admin_login(browser, "root@example.com", "wrong password")

    assert response.status_code == 200
    assert not is_logged_in(browser)


def test_admin_login_of_a_non_staff_user_is_refused(browser, user, clock):
    admin_login(browser, "ann@example.com")

    assert not is_logged_in(browser)


def test_admin_login_page_asks_for_the_authenticator_code(browser, db):
    response = browser.get(ADMIN_LOGIN)

    assert response.status_code == 200
    assert 'name="otp_token"' in response.content.decode()


def test_user_changelist_lists_users(admin_client_for, user, other_user):
    content = admin_client_for.get(ADMIN_USERS).content.decode()

    assert "ann@example.com" in content
    assert "bob@example.com" in content


def test_user_changelist_search_by_email(admin_client_for, user, other_user):
    response = admin_client_for.get(ADMIN_USERS, {"q": "bob@"})

    content = response.content.decode()
    assert response.status_code == 200
    assert "bob@example.com" in content
    assert "ann@example.com" not in content


@pytest.mark.parametrize(
    "flag, shown, hidden", [("1", "ann@example.com", "bob@example.com"), ("0", "bob@example.com", "ann@example.com")]
)
def test_user_changelist_filters_by_otp_enabled(admin_client_for, user_with_2fa, other_user, flag, shown, hidden):
    response = admin_client_for.get(ADMIN_USERS, {"otp_enabled__exact": flag})

    content = response.content.decode()
    assert response.status_code == 200
    assert shown in content
    assert hidden not in content


def test_user_change_page_never_shows_the_secret(admin_client_for, user_with_2fa):
    services.prepare_secret(user=user_with_2fa)  # a pending re-enrolment too

    response = admin_client_for.get(f"{ADMIN_USERS}{user_with_2fa.pk}/change/")

    content = response.content.decode()
    assert response.status_code == 200
    assert "ann@example.com" in content
    assert user_with_2fa.otp_secret not in content
    assert user_with_2fa.pending_secret not in content
    assert 'name="otp_secret"' not in content and 'name="pending_secret"' not in content


def test_user_change_form_cannot_set_the_secret(admin_client_for, user_with_2fa):
    secret = user_with_2fa.otp_secret
    admin_client_for.post(
        f"{ADMIN_USERS}{user_with_2fa.pk}/change/",
        {"email": "ann@example.com", "name": "Ann", "is_active": "on", "otp_secret": "A" * 32, "otp_enabled": ""},
    )

    user_with_2fa.refresh_from_db()
    assert (user_with_2fa.otp_secret, user_with_2fa.otp_enabled) == (secret, True)


@pytest.mark.parametrize(
    "email",
    ["ann@ex\u00adample.com", "zed@exa\u2764mple.com"],
    ids=["another-spelling-of-a-taken-email", "domain-that-idna-refuses"],
)
def test_the_admin_adds_no_account_that_registration_refuses(admin_client_for, user, email):
    response = admin_client_for.post(f"{ADMIN_USERS}add/", {"email": email, "name": "Zed", "usable_password": "false"})

    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors
    assert sorted(UserModel.objects.values_list("email", flat=True)) == ["ann@example.com", "root@example.com"]


def test_staff_with_2fa_cannot_log_in_with_the_password_only(browser, staff_with_2fa, clock):
    response = admin_login(browser, "staff@example.com")

    assert response.status_code == 200
    assert not is_logged_in(browser)


def test_staff_with_2fa_cannot_log_in_with_a_wrong_code(browser, staff_with_2fa, clock):
    admin_login(browser, "staff@example.com", otp_token=wrong_code(staff_with_2fa.otp_secret, clock))

    assert not is_logged_in(browser)


def test_staff_with_2fa_logs_in_with_password_and_code(browser, staff_with_2fa, clock):
    response = admin_login(browser, "staff@example.com", otp_token=code_for(staff_with_2fa.otp_secret, clock))

    assert response.status_code == 302
    assert is_logged_in(browser)


def test_staff_with_2fa_code_with_a_wrong_password_does_not_log_in(browser, staff_with_2fa, clock):
    admin_login(browser, "staff@example.com", "wrong password", otp_token=code_for(staff_with_2fa.otp_secret, clock))

    assert not is_logged_in(browser)


def test_admin_code_used_once_is_refused_again(staff_with_2fa, clock):
    code = code_for(staff_with_2fa.otp_secret, clock)
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    assert admin_login(first, "staff@example.com", otp_token=code).status_code == 302

    clock.tick(10)
    response = admin_login(second, "staff@example.com", otp_token=code)

    assert response.status_code == 200
    assert not is_logged_in(second)


def test_code_used_at_the_api_login_is_refused_at_the_admin(staff_with_2fa, clock, api):
    code = code_for(staff_with_2fa.otp_secret, clock)
    api.post("/api/auth/login", {"email": "staff@example.com", "password": PASSWORD}, format="json")
    assert api.post("/api/auth/otp/validate", {"token": code}, format="json").status_code == 200

    browser = Client()
    admin_login(browser, "staff@example.com", otp_token=code)

    assert not is_logged_in(browser)


@override_settings(TWOFA_LOGIN_FAILURES_PER_ACCOUNT="3/15m")
def test_admin_login_is_throttled_like_the_api_login(browser, superuser, clock, monkeypatch):
    # Hold the counters' clock still so that no counting window ends mid-test.
    monkeypatch.setattr(django_ratelimit.core, "time", SimpleNamespace(time=lambda: 1_800_000_000))
    for _ in range(3):
        admin_login(browser, "root@example.com", "wrong password")

    admin_login(browser, "root@example.com")

    assert not is_logged_in(browser)
