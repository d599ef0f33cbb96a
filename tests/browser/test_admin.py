"""The Django admin in a real browser, on gunicorn with production settings (static files by
WhiteNoise): a superuser made by `createsuperuser` logs in, finds a user by email and sees its
2FA status; a superuser with 2FA on needs the authenticator code as well. The admin works under
its Content-Security-Policy with nothing refused. With TWOFA_REQUIRED_FOR_STAFF, a superuser
without 2FA is told to enrol first, and enters once enrolled."""

import subprocess
import sys

import pyotp
import pytest

from otp_app.middleware import ADMIN
from tests.helpers import PASSWORD, next_code
from tests.support.http_client import Account, fresh_email
from tests.support.server import ROOT, Server, serving

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of its own: the test needs its database for `createsuperuser`."""
    with serving(tmp_path_factory.mktemp("admin")) as server:
        yield server


def create_superuser(server: Server, email: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput", "--email", email, "--name", "Admin"],
        cwd=ROOT,
        env={**server.env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
        check=True,
        capture_output=True,
    )


def admin_login(page, url: str, email: str, otp_token: str | None = None) -> None:
    page.goto(url + "/admin/")
    page.locator("#id_username").fill(email)
    page.locator("#id_password").fill(PASSWORD)
    if otp_token is not None:
        page.locator("#id_otp_token").fill(otp_token)
    page.locator("#login-form [type=submit]").click()
    page.wait_for_load_state()


def find_user(page, email: str):
    """The users list, searched by `email`: its one row."""
    page.get_by_role("link", name="Users", exact=True).first.click()
    page.locator("#searchbar").fill(email)
    page.locator("#searchbar").press("Enter")
    page.wait_for_url("**/?q=*")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    return rows.first


def status_icon(row, field: str) -> str:
    """What a boolean column shows: Django draws True/False as an icon with that alt text."""
    return row.locator(f".field-{field} img").get_attribute("alt")


def test_superuser_finds_a_user_by_email_and_sees_its_2fa_status(page, server):
    admin_email = fresh_email("admin")
    create_superuser(server, admin_email)
    with_2fa = Account(server.url)
    secret = with_2fa.enrol()
    without_2fa = Account(server.url)
    assert without_2fa.register().status_code == 201

    admin_login(page, server.url, admin_email)
    assert page.locator("h1").inner_text() == "Site administration"

    row = find_user(page, with_2fa.email)
    assert row.locator(".field-email").inner_text() == with_2fa.email
    assert status_icon(row, "otp_enabled") == "True"
    assert status_icon(row, "otp_verified") == "True"
    headers = page.locator("#result_list thead th").all_inner_texts()
    assert any("otp enabled" in header.lower() for header in headers), headers

    # The user's page shows the 2FA state, never the secret.
    row.locator(".field-email a").click()
    assert page.locator(".field-otp_enabled img").get_attribute("alt") == "True"
    assert secret not in page.content()

    page.go_back()
    row = find_user(page, without_2fa.email)
    assert status_icon(row, "otp_enabled") == "False"
    assert status_icon(row, "otp_verified") == "False"
    assert page.errors == []


def test_superuser_with_2fa_needs_the_code_at_the_admin_login(page, server):
    admin_email = fresh_email("admin-2fa")
    create_superuser(server, admin_email)
    admin = Account(server.url, admin_email)
    assert admin.login().status_code == 200
    admin.secret = admin.post("otp/generate").json()["base32"]
    assert admin.post("otp/verify", {"token": pyotp.TOTP(admin.secret).now()}).status_code == 200

    admin_login(page, server.url, admin_email)
    assert page.locator(".errornote").inner_text() == "Enter a valid, unused authenticator code."
    assert page.locator("#login-form").is_visible()

    admin_login(page, server.url, admin_email, otp_token=next_code(admin.secret))
    assert page.locator("h1").inner_text() == "Site administration"


def test_admin_works_under_its_content_security_policy_with_nothing_refused(page, server):
    admin_email = fresh_email("admin-csp")
    create_superuser(server, admin_email)
    response = page.goto(server.url + "/admin/login/")
    assert response.headers["content-security-policy"] == ADMIN

    admin_login(page, server.url, admin_email)
    assert page.locator("h1").inner_text() == "Site administration"
    row = find_user(page, admin_email)
    row.locator(".field-email a").click()
    assert page.locator("#id_email").input_value() == admin_email
    for path, title in [
        ("otp_app/usermodel/add/", "Add user"),
        ("otp_app/securityevent/", "Select security event to view"),
    ]:
        response = page.goto(f"{server.url}/admin/{path}")
        assert response.headers["content-security-policy"] == ADMIN
        assert page.locator("h1").inner_text() == title
    assert page.csp_violations == []
    assert page.errors == []


@pytest.fixture(scope="module")
def staff_must_enrol(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("admin-required"), env={"TWOFA_REQUIRED_FOR_STAFF": "true"}) as server:
        yield server


def test_superuser_without_2fa_is_told_to_enrol_and_enters_once_enrolled(page, staff_must_enrol):
    server = staff_must_enrol
    admin_email = fresh_email("admin-required")
    create_superuser(server, admin_email)

    admin_login(page, server.url, admin_email)
    assert page.locator("h1").inner_text() == "Two-factor authentication is required: enrol first"
    response = page.goto(server.url + "/admin/otp_app/usermodel/")
    assert response.status == 403
    assert response.headers["content-security-policy"] == ADMIN
    page.locator("#logout-form [type=submit]").click()
    page.wait_for_load_state()
    page.goto(server.url + "/admin/")
    assert page.locator("#login-form").is_visible()

    admin = Account(server.url, admin_email)
    assert admin.login().status_code == 200
    admin.secret = admin.post("otp/generate").json()["base32"]
    assert admin.post("otp/verify", {"token": pyotp.TOTP(admin.secret).now()}).status_code == 200

    admin_login(page, server.url, admin_email, otp_token=next_code(admin.secret))
    assert page.locator("h1").inner_text() == "Site administration"
    assert page.csp_violations == []
    assert page.errors == []
