"""What the sessions table holds, and how long a session lasts.

The table keeps a hash of each key, never the key, so a read of it yields no session. A session
ends SESSION_IDLE_SECONDS (30 minutes) after its last use or SESSION_COOKIE_AGE (12 hours) after
its login, whichever comes first; a used session's row is refreshed at most once a minute.
"""

import asyncio
import importlib

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from otp_app.models import Session
from otp_app.session_backends.db import SessionStore, stored_key
from tests.helpers import LOGOUT, ME, VALIDATE, code_for, login

hash_keys = importlib.import_module("otp_app.migrations.0007_hash_session_keys").hash_keys


def cookie(client) -> str:
    return client.cookies["sessionid"].value


def stored_keys() -> list[str]:
    return list(Session.objects.values_list("session_key", flat=True))


def test_the_table_holds_a_hash_of_the_key_never_the_key(logged_in_client):
    key = cookie(logged_in_client)

    assert stored_keys() == [stored_key(key)]
    assert key not in stored_keys()
    assert not any(key in row.session_data for row in Session.objects.all())


def test_a_stored_key_used_as_a_cookie_opens_no_session(logged_in_client):
    thief = APIClient()
    thief.cookies["sessionid"] = stored_keys()[0]

    assert thief.get(ME).status_code == 401
    assert logged_in_client.get(ME).status_code == 200


def test_logout_and_key_rotation_leave_no_row_of_the_old_key(pending_client, user_with_2fa, clock):
    pending_key = cookie(pending_client)
    assert (
        pending_client.post(VALIDATE, {"token": code_for(user_with_2fa.otp_secret, clock)}, format="json").status_code
        == 200
    )
    full_key = cookie(pending_client)
    assert stored_keys() == [stored_key(full_key)]

    pending_client.post(LOGOUT, format="json")

    assert stored_key(pending_key) not in stored_keys() and stored_key(full_key) not in stored_keys()


def test_the_upgrade_hashes_the_keys_of_existing_sessions(logged_in_client):
    key = cookie(logged_in_client)
    Session.objects.filter(session_key=stored_key(key)).update(session_key=key)  # as stored before

    hash_keys(apps, None)

    assert stored_keys() == [stored_key(key)]
    assert logged_in_client.get(ME).status_code == 200
    hash_keys(apps, None)  # a second run changes nothing
    assert stored_keys() == [stored_key(key)]


def test_a_session_used_every_20_minutes_lasts(logged_in_client, clock):
    for _ in range(6):
        clock.tick(20 * 60)
        assert logged_in_client.get(ME).status_code == 200


def test_a_session_unused_for_more_than_the_idle_timeout_ends(logged_in_client, clock, settings):
    assert settings.SESSION_IDLE_SECONDS == 30 * 60
    clock.tick(29 * 60)
    assert logged_in_client.get(ME).status_code == 200
    clock.tick(31 * 60)

    assert logged_in_client.get(ME).status_code == 401


def test_a_session_ends_12_hours_after_its_login_however_busy(logged_in_client, clock, settings):
    assert settings.SESSION_COOKIE_AGE == 12 * 3600
    for _ in range(12 * 3 - 1):
        clock.tick(20 * 60)
        assert logged_in_client.get(ME).status_code == 200
    clock.tick(20 * 60)

    assert logged_in_client.get(ME).status_code == 401


def test_the_idle_timeout_can_be_turned_off(api, user, clock, settings):
    settings.SESSION_IDLE_SECONDS = 0
    assert login(api, user.email).status_code == 200
    clock.tick(11 * 3600)

    assert api.get(ME).status_code == 200


def test_a_use_within_a_minute_of_the_last_refresh_writes_nothing(logged_in_client, clock):
    clock.tick(50)
    with CaptureQueriesContext(connection) as queries:
        assert logged_in_client.get(ME).status_code == 200

    assert [query["sql"] for query in queries if not query["sql"].lstrip().upper().startswith("SELECT")] == []


def test_a_use_a_minute_after_the_last_refresh_writes_the_row_once(logged_in_client, clock):
    clock.tick(61)
    with CaptureQueriesContext(connection) as queries:
        assert logged_in_client.get(ME).status_code == 200
    clock.tick(1)
    with CaptureQueriesContext(connection) as again:
        assert logged_in_client.get(ME).status_code == 200

    table = Session._meta.db_table
    assert [query["sql"].split()[0] for query in queries if table in query["sql"] and "UPDATE" in query["sql"]] == [
        "UPDATE"
    ]
    assert not [query for query in again if "UPDATE" in query["sql"]]


def test_clearsessions_removes_the_sessions_ended_on_the_app_clock(logged_in_client, user, clock):
    clock.tick(31 * 60)
    live = APIClient()
    assert login(live, user.email).status_code == 200

    call_command("clearsessions")

    assert stored_keys() == [stored_key(cookie(live))]


def test_the_cookie_lasts_as_long_as_the_session(api, user, clock):
    response = login(api, user.email)

    assert response.cookies["sessionid"]["max-age"] == 30 * 60


@pytest.mark.parametrize("method", ["aload", "aexists", "asave", "adelete", "acycle_key", "aflush", "aget"])
def test_the_async_methods_are_refused_rather_than_half_done(db, method):
    store = SessionStore("k" * 32)  # a key, as a request's cookie gives
    call = getattr(store, method)
    arguments = {"aexists": ("key",), "aget": ("key",)}.get(method, ())

    with pytest.raises(NotImplementedError, match="synchronous only"):
        asyncio.run(call(*arguments))
    assert not Session.objects.exists()
