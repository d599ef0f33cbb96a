"""Admin tools: the user list shows 2FA status, recovery codes left, lockout state and last
login; the actions "reset two-factor authentication" and "unlock"; security events listed
read-only, filterable by kind and user, searchable by email."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from otp_app import services, totp
from otp_app.models import RecoveryCode, SecurityEvent, UserModel
from tests.helpers import ADMIN_USERS, VALIDATE, code_for, login, make_user, pending_login

EVENTS = "/admin/otp_app/securityevent/"
Kind = SecurityEvent.Kind


@pytest.fixture
def admin(superuser, clock):
    client = Client()
    client.force_login(superuser)
    return client


def locked_account(clock, email="ann@example.com", name="Ann") -> tuple[UserModel, str]:
    """An account with 2FA on, recovery codes, a pending re-enrolment, and locked out."""
    secret = totp.new_secret()
    user = make_user(
        email, name, otp_enabled=True, otp_verified=True, otp_secret=secret, pending_secret=totp.new_secret()
    )
    RecoveryCode.objects.bulk_create(RecoveryCode(user=user, code_hash=f"{user.pk.hex}{n:032x}") for n in range(10))
    UserModel.objects.filter(pk=user.pk).update(
        recovery_codes_left=10, failed_attempts=7, locked_until=services.as_datetime(clock.now) + timedelta(minutes=10)
    )
    return UserModel.objects.get(pk=user.pk), secret


def run_action(client, action: str, *users):
    return client.post(ADMIN_USERS, {"action": action, "_selected_action": [str(user.pk) for user in users]})


def row_of(html: str, email: str) -> str:
    rows = [row for row in html.split("<tr") if email in row]
    assert len(rows) == 1, email
    return rows[0]


def cell(row: str, field: str) -> str:
    match = re.search(rf'<td class="field-{field}[^"]*"[^>]*>(.*?)</td>', row, re.S)
    assert match, field
    return match.group(1)


# --- The user list ---------------------------------------------------------------------------------


def test_user_list_has_columns_for_2fa_codes_left_lockout_and_last_login(admin, clock):
    locked_account(clock)
    html = admin.get(ADMIN_USERS).content.decode()

    headers = re.findall(r'<th scope="col" class="[^"]*column-([a-z_]+)[^"]*"', html)
    assert "otp_enabled" in headers
    assert "recovery_codes_left" in headers
    assert "last_login" in headers
    assert any("lock" in header for header in headers), headers


def test_user_list_shows_each_accounts_state(admin, clock):
    ann, _ = locked_account(clock)
    UserModel.objects.filter(pk=ann.pk).update(recovery_codes_left=7, last_login=timezone.now())
    make_user("bob@example.com", "Bob")

    html = admin.get(ADMIN_USERS).content.decode()

    ann_row, bob_row = row_of(html, "ann@example.com"), row_of(html, "bob@example.com")
    lock_field = next(field for field in re.findall(r'class="field-([a-z_]+)', ann_row) if "lock" in field)
    assert 'alt="True"' in cell(ann_row, "otp_enabled") and 'alt="False"' in cell(bob_row, "otp_enabled")
    assert cell(ann_row, "recovery_codes_left").strip() == "7"
    assert cell(bob_row, "recovery_codes_left").strip() == "0"
    assert 'alt="True"' in cell(ann_row, lock_field) and 'alt="False"' in cell(bob_row, lock_field)
    assert cell(ann_row, "last_login").strip() not in ("-", "")


def test_an_expired_lock_is_not_shown_as_locked(admin, clock):
    ann, _ = locked_account(clock)
    clock.tick(11 * 60)
    row = row_of(admin.get(ADMIN_USERS).content.decode(), "ann@example.com")
    lock_field = next(field for field in re.findall(r'class="field-([a-z_]+)', row) if "lock" in field)
    assert 'alt="False"' in cell(row, lock_field)


def test_both_actions_are_offered(admin, clock):
    html = admin.get(ADMIN_USERS).content.decode()
    assert 'value="reset_two_factor"' in html
    assert 'value="unlock"' in html


# --- Reset two-factor authentication --------------------------------------------------------------


def test_reset_clears_secrets_codes_and_lockout(admin, clock):
    ann, _ = locked_account(clock)
    assert RecoveryCode.objects.filter(user=ann).count() == 10

    response = run_action(admin, "reset_two_factor", ann)

    assert response.status_code == 302
    ann.refresh_from_db()
    assert (ann.otp_enabled, ann.otp_verified) == (False, False)
    assert (ann.otp_secret, ann.pending_secret) == ("", "")
    assert RecoveryCode.objects.filter(user=ann).count() == 0
    assert ann.recovery_codes_left == 0
    assert (ann.failed_attempts, ann.locked_until) == (0, None)


def test_reset_records_an_event_naming_the_administrator(admin, superuser, clock):
    ann, secret = locked_account(clock)
    run_action(admin, "reset_two_factor", ann)

    event = SecurityEvent.objects.get(kind=Kind.OTP_RESET_BY_ADMIN)
    assert event.user == ann
    assert event.email == ann.email
    assert superuser.email in str(event.detail)
    assert secret not in str(event.detail)


def test_after_a_reset_the_password_alone_gives_a_full_session(admin, clock):
    ann, _ = locked_account(clock)
    run_action(admin, "reset_two_factor", ann)

    client = APIClient()
    response = login(client, ann.email)
    assert response.json()["user"]["otp_enabled"] is False
    assert client.get("/api/auth/me").status_code == 200


def test_reset_touches_only_the_selected_accounts(admin, clock):
    ann, _ = locked_account(clock)
    bob, _ = locked_account(clock, "bob@example.com", "Bob")
    before = UserModel.objects.filter(pk=bob.pk).values().get()

    run_action(admin, "reset_two_factor", ann)

    assert UserModel.objects.filter(pk=bob.pk).values().get() == before
    assert RecoveryCode.objects.filter(user=bob).count() == 10
    assert not SecurityEvent.objects.filter(kind=Kind.OTP_RESET_BY_ADMIN, user=bob).exists()


def test_reset_of_several_accounts_records_one_event_each(admin, clock):
    ann, _ = locked_account(clock)
    bob, _ = locked_account(clock, "bob@example.com", "Bob")

    run_action(admin, "reset_two_factor", ann, bob)

    assert not UserModel.objects.filter(otp_enabled=True).exists()
    assert SecurityEvent.objects.filter(kind=Kind.OTP_RESET_BY_ADMIN).count() == 2


# --- Unlock ----------------------------------------------------------------------------------------


def test_unlock_clears_the_lockout_and_keeps_the_second_factor(admin, clock):
    ann, secret = locked_account(clock)
    client = pending_login(ann.email)
    assert client.post(VALIDATE, {"token": code_for(secret, clock)}, format="json").status_code == 429

    assert run_action(admin, "unlock", ann).status_code == 302

    ann.refresh_from_db()
    assert (ann.failed_attempts, ann.locked_until) == (0, None)
    assert ann.otp_enabled and ann.otp_secret and ann.recovery_codes_left == 10
    assert client.post(VALIDATE, {"token": code_for(secret, clock)}, format="json").status_code == 200


def test_unlock_touches_only_the_selected_accounts(admin, clock):
    ann, _ = locked_account(clock)
    bob, _ = locked_account(clock, "bob@example.com", "Bob")

    run_action(admin, "unlock", ann)

    bob.refresh_from_db()
    assert bob.failed_attempts == 7 and bob.locked_until is not None


# --- Who may use the actions -------------------------------------------------------------------------


@pytest.fixture
def viewer(db, clock):
    """Staff who may look at users but not change them."""
    viewer = make_user("viewer@example.com", "Viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_usermodel"))
    client = Client()
    client.force_login(viewer)
    return client


def test_staff_who_may_only_view_users_can_see_the_list(viewer, clock):
    locked_account(clock)
    assert viewer.get(ADMIN_USERS).status_code == 200


def test_staff_who_may_only_view_users_cannot_reset_anyones_second_factor(viewer, clock):
    ann, _ = locked_account(clock)

    run_action(viewer, "reset_two_factor", ann)

    ann.refresh_from_db()
    assert ann.otp_enabled and ann.otp_secret
    assert RecoveryCode.objects.filter(user=ann).count() == 10
    assert not SecurityEvent.objects.filter(kind=Kind.OTP_RESET_BY_ADMIN).exists()


def test_staff_who_may_only_view_users_cannot_unlock(viewer, clock):
    ann, _ = locked_account(clock)

    run_action(viewer, "unlock", ann)

    ann.refresh_from_db()
    assert ann.locked_until is not None


# --- Security events: read-only, filterable, searchable ------------------------------------------------


@pytest.fixture
def events(db):
    ann = make_user("ann@example.com", "Ann")
    bob = make_user("bob@example.com", "Bob")
    return {
        "ann_login": SecurityEvent.objects.create(
            kind=Kind.LOGIN_SUCCEEDED, user=ann, email=ann.email, client_address="203.0.113.1"
        ),
        "ann_enabled": SecurityEvent.objects.create(
            kind=Kind.OTP_ENABLED, user=ann, email=ann.email, request_id="5f0c2e8a9b7d4c1e8f3a6b2d1c0e9f8a"
        ),
        "bob_failed": SecurityEvent.objects.create(kind=Kind.LOGIN_FAILED, user=bob, email=bob.email),
        "nobody_failed": SecurityEvent.objects.create(kind=Kind.LOGIN_FAILED, email="nobody@example.com"),
    }


def listed(html: str) -> set[str]:
    return set(re.findall(r"/admin/otp_app/securityevent/(\d+)/change/", html))


def ids(*events) -> set[str]:
    return {str(event.pk) for event in events}


def test_events_are_listed(admin, events):
    response = admin.get(EVENTS)
    assert response.status_code == 200
    assert listed(response.content.decode()) == ids(*events.values())


def test_events_filter_by_kind(admin, events):
    html = admin.get(EVENTS).content.decode()
    assert "kind__exact=login_failed" in html  # the filter is offered

    response = admin.get(EVENTS, {"kind__exact": "login_failed"})

    assert listed(response.content.decode()) == ids(events["bob_failed"], events["nobody_failed"])


def test_events_filter_by_user(admin, events):
    ann = events["ann_login"].user
    html = admin.get(EVENTS).content.decode()
    link = re.search(rf'href="\?(user__[a-z_]+={ann.pk})"', html)
    assert link, "no filter by user offered"

    response = admin.get(f"{EVENTS}?{link.group(1)}")

    assert listed(response.content.decode()) == ids(events["ann_login"], events["ann_enabled"])


@pytest.mark.parametrize(
    "query, expected",
    [("bob@", ["bob_failed"]), ("ann@example.com", ["ann_login", "ann_enabled"]), ("nobody", ["nobody_failed"])],
)
def test_events_are_searchable_by_email(admin, events, query, expected):
    response = admin.get(EVENTS, {"q": query})
    assert listed(response.content.decode()) == ids(*(events[name] for name in expected))


def test_events_cannot_be_added(admin, events):
    assert admin.get(f"{EVENTS}add/").status_code == 403
    admin.post(f"{EVENTS}add/", {"kind": "registered", "email": "forged@example.com"})
    assert not SecurityEvent.objects.filter(email="forged@example.com").exists()


def test_events_cannot_be_changed(admin, events):
    event = events["ann_login"]
    page = admin.get(f"{EVENTS}{event.pk}/change/")
    assert page.status_code == 200  # they can be read
    assert 'name="_save"' not in page.content.decode()

    admin.post(
        f"{EVENTS}{event.pk}/change/",
        {"kind": "registered", "email": "changed@example.com", "client_address": "192.0.2.9"},
    )

    event.refresh_from_db()
    assert (event.kind, event.email, event.client_address) == (Kind.LOGIN_SUCCEEDED, "ann@example.com", "203.0.113.1")


def test_events_cannot_be_deleted(admin, events):
    event = events["ann_login"]
    assert admin.get(f"{EVENTS}{event.pk}/delete/").status_code == 403
    admin.post(f"{EVENTS}{event.pk}/delete/", {"post": "yes"})
    admin.post(EVENTS, {"action": "delete_selected", "_selected_action": [str(event.pk)], "post": "yes"})
    assert SecurityEvent.objects.filter(pk=event.pk).exists()
    assert SecurityEvent.objects.count() == len(events)


def test_events_are_found_by_the_request_id_of_a_log_line(admin, events):
    response = admin.get(EVENTS, {"q": "5f0c2e8a9b7d4c1e8f3a6b2d1c0e9f8a"})
    assert listed(response.content.decode()) == ids(events["ann_enabled"])
    detail = admin.get(f"{EVENTS}{events['ann_enabled'].pk}/change/").content.decode()
    assert "5f0c2e8a9b7d4c1e8f3a6b2d1c0e9f8a" in detail
