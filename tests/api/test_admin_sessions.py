"""The admin's user page lists the account's sessions (public id, state, start, last use, address,
user agent; never a key nor the hash the table keeps) and ends one when its Delete box is
ticked and the page saved: its next request is answered like no session."""

from html import escape

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from rest_framework.test import APIClient

from otp_app.models import Passkey, SecurityEvent
from otp_app.session_backends.db import stored_key
from tests.helpers import (
    ADMIN_USERS,
    ME,
    add_passkey,
    admin_form,
    is_logged_in,
    login,
    pending_login,
    public_id,
    session_key,
)
from tests.support.authenticator import SoftwareAuthenticator

AGENT = "AdminSessionsTest/3.1 (Ann's tablet)"
ADDRESS = "198.51.100.77"


@pytest.fixture
def admin(superuser, clock):
    client = Client()
    client.force_login(superuser)
    return client


def change_page(user) -> str:
    return f"{ADMIN_USERS}{user.pk}/change/"


def sessions_part(page: str) -> str:
    """The sessions' inline of a user's page: from its heading to the end of its table."""
    start = page.index('id="sessions-group"')
    return page[start : page.index("</table>", start)]


def save(admin, user, **ticked):
    """Save the user's page as the admin finds it, with the boxes `ticked` ({name: "on"})."""
    form = admin_form(admin.get(change_page(user)).content.decode())
    return admin.post(change_page(user), {**form, **ticked})


def delete_box_of(admin, user, session_id: str) -> str:
    """The name of the Delete box on the row of the session `session_id`."""
    form = admin_form(admin.get(change_page(user)).content.decode())
    (prefix,) = [name.removesuffix("-session_key") for name, value in form.items() if value == session_id]
    return f"{prefix}-DELETE"


def test_the_users_page_lists_each_session_with_its_state_address_and_agent(admin, user_with_2fa, clock):
    tablet = APIClient(HTTP_USER_AGENT=AGENT, REMOTE_ADDR=ADDRESS)
    assert login(tablet, user_with_2fa.email).status_code == 200  # pending
    clock.tick(30)
    phone = APIClient(HTTP_USER_AGENT="Phone/1.0")
    assert login(phone, user_with_2fa.email).status_code == 200

    part = sessions_part(admin.get(change_page(user_with_2fa)).content.decode())

    assert part.count('class="form-row has_original"') == 2
    for client in (tablet, phone):
        assert public_id(client) in part
    assert "<p>pending</p>" in part
    assert ADDRESS in part and escape(AGENT) in part and "Phone/1.0" in part


def test_a_full_session_is_listed_as_full(admin, logged_in_client, user):
    part = sessions_part(admin.get(change_page(user)).content.decode())

    assert "<p>full</p>" in part and "<p>pending</p>" not in part


def test_the_page_never_holds_a_session_key_nor_its_hash(admin, user_with_2fa, full_2fa_client, clock):
    waiting = pending_login(user_with_2fa.email)

    page = admin.get(change_page(user_with_2fa)).content.decode()

    for client in (full_2fa_client, waiting):
        assert session_key(client) not in page
        assert stored_key(session_key(client)) not in page
    assert public_id(full_2fa_client) in page and public_id(waiting) in page


def test_another_accounts_sessions_are_not_listed(admin, logged_in_client, user, other_user):
    bob = APIClient()
    assert login(bob, other_user.email).status_code == 200

    page = admin.get(change_page(user)).content.decode()

    assert public_id(logged_in_client) in page
    assert public_id(bob) not in page


def test_ticking_delete_and_saving_ends_that_session_only(admin, logged_in_client, user, other_user):
    other = APIClient()
    assert login(other, user.email).status_code == 200
    bob = APIClient()
    assert login(bob, other_user.email).status_code == 200

    response = save(admin, user, **{delete_box_of(admin, user, public_id(other)): "on"})

    assert response.status_code == 302
    assert other.get(ME).status_code == 401
    assert logged_in_client.get(ME).status_code == 200
    assert bob.get(ME).status_code == 200
    assert is_logged_in(admin)


def test_a_pending_session_can_be_ended_too(admin, user_with_2fa, full_2fa_client, clock):
    waiting = pending_login(user_with_2fa.email)

    response = save(admin, user_with_2fa, **{delete_box_of(admin, user_with_2fa, public_id(waiting)): "on"})

    assert response.status_code == 302
    assert waiting.get(ME).status_code == 401  # a pending session that lives is a 403 here
    assert full_2fa_client.get(ME).status_code == 200


def test_saving_with_no_box_ticked_ends_nothing_and_keeps_the_edits(admin, logged_in_client, user):
    response = save(admin, user, name="Ann Smith")

    assert response.status_code == 302
    assert logged_in_client.get(ME).json()["user"]["name"] == "Ann Smith"


def test_a_session_of_another_account_named_in_the_form_is_not_ended(admin, logged_in_client, user, other_user):
    bob = APIClient()
    assert login(bob, other_user.email).status_code == 200
    form = admin_form(admin.get(change_page(user)).content.decode())
    assert form["sessions-0-session_key"] == public_id(logged_in_client)

    response = admin.post(
        change_page(user), {**form, "sessions-0-session_key": public_id(bob), "sessions-0-DELETE": "on"}
    )

    assert response.status_code == 302
    assert bob.get(ME).status_code == 200
    assert logged_in_client.get(ME).status_code == 200


def test_a_passkey_of_another_account_named_in_the_form_is_not_removed(admin, logged_in_client, user, other_user):
    authenticator = SoftwareAuthenticator(origin="http://testserver", rp_id="localhost")
    assert add_passkey(logged_in_client, authenticator).status_code == 201
    bob = APIClient()
    assert login(bob, other_user.email).status_code == 200
    bobs = add_passkey(bob, SoftwareAuthenticator(origin="http://testserver", rp_id="localhost")).json()["passkey"]
    form = admin_form(admin.get(change_page(user)).content.decode())

    response = admin.post(change_page(user), {**form, "passkeys-0-id": bobs["id"], "passkeys-0-DELETE": "on"})

    assert response.status_code == 302
    assert Passkey.objects.filter(user=other_user).count() == 1
    assert Passkey.objects.filter(user=user).count() == 1
    assert bob.get(ME).status_code == 200 and logged_in_client.get(ME).status_code == 200


def test_removing_the_last_passkey_in_the_admin_records_both_events_by_the_admin(
    admin, logged_in_client, user, superuser
):
    authenticator = SoftwareAuthenticator(origin="http://testserver", rp_id="localhost")
    passkey = add_passkey(logged_in_client, authenticator).json()["passkey"]
    form = admin_form(admin.get(change_page(user)).content.decode())

    response = admin.post(change_page(user), {**form, "passkeys-0-id": passkey["id"], "passkeys-0-DELETE": "on"})

    assert response.status_code == 302
    assert not Passkey.objects.filter(user=user).exists()
    removal = SecurityEvent.objects.filter(user=user, kind__in=["passkey_removed", "otp_disabled"]).order_by("pk")
    assert [(event.kind, event.detail) for event in removal] == [
        ("passkey_removed", {"passkey": passkey["id"], "by": superuser.email}),
        ("otp_disabled", {"by": superuser.email}),
    ]


def test_the_admins_history_names_the_ended_session_by_its_public_id(admin, logged_in_client, user):
    ended_id, key = public_id(logged_in_client), session_key(logged_in_client)

    assert save(admin, user, **{delete_box_of(admin, user, ended_id): "on"}).status_code == 302

    (entry,) = LogEntry.objects.filter(object_id=str(user.pk))
    assert ended_id in entry.change_message
    assert key not in entry.change_message and stored_key(key) not in entry.change_message


def test_ending_a_session_in_the_admin_is_recorded_with_who_did_it(admin, logged_in_client, user, superuser):
    other = APIClient()
    assert login(other, user.email).status_code == 200

    assert save(admin, user, **{delete_box_of(admin, user, public_id(other)): "on"}).status_code == 302

    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.SESSIONS_ENDED, user=user)
    assert event.detail == {"ended": 1, "by": superuser.email}


def test_ended_sessions_are_not_listed(admin, logged_in_client, user, superuser, clock, settings):
    listed = public_id(logged_in_client)
    assert listed in sessions_part(admin.get(change_page(user)).content.decode())

    clock.tick(settings.SESSION_IDLE_SECONDS + 1)  # over: the row stays until clearsessions
    admin.force_login(superuser)  # the administrator's own session idled out too
    later = APIClient()
    assert login(later, user.email).status_code == 200

    part = sessions_part(admin.get(change_page(user)).content.decode())
    assert public_id(later) in part and listed not in part
