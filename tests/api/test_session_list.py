"""The account's sessions: GET sessions lists the live ones (pending too), DELETE sessions/<id>
ends one, POST sessions/end-others ends all but this one.

A session's id names it and opens nothing: it is neither its key nor the hash the table keeps.
An ended session is answered like no session (401) at its next request. last_active_at lags by
up to a minute, so that a request does not write its session's row every time.
"""

import secrets

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from otp_app import rows
from otp_app.models import SecurityEvent, Session
from otp_app.session_backends.db import stored_key
from tests.helpers import (
    END_OTHER_SESSIONS,
    ME,
    SESSIONS,
    code_for,
    full_login,
    iso,
    login,
    pending_login,
    public_id,
    session_key,
    session_row,
    validate,
)

SESSION_FIELDS = {"id", "current", "state", "created_at", "last_active_at", "ip", "user_agent"}
NOT_FOUND = {"status": "fail", "message": "Session not found"}
AGENT = "SessionListTest/1.0 (Ann's phone)"
ADDRESS = "198.51.100.23"
Kind = SecurityEvent.Kind


def listed(client) -> list[dict]:
    response = client.get(SESSIONS)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"status", "sessions"} and body["status"] == "success"
    return body["sessions"]


def by_id(client) -> dict[str, dict]:
    return {session["id"]: session for session in listed(client)}


def end(client, session_id: str):
    return client.delete(f"{SESSIONS}/{session_id}")


def alive(client) -> bool:
    """Whether the client's full session still opens `me` (an ended one is a 401)."""
    status = client.get(ME).status_code
    assert status in (200, 401), status
    return status == 200


def session_writes(run) -> list[str]:
    """The statements that `run` sends to the sessions table, other than reads."""
    table = Session._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        run()
    return [query["sql"].split()[0] for query in queries if table in query["sql"] and "SELECT" not in query["sql"]]


# --- GET sessions ------------------------------------------------------------------------------------


def test_each_session_has_exactly_the_session_fields_and_this_one_is_marked_current(user, clock):
    phone = APIClient(HTTP_USER_AGENT=AGENT, REMOTE_ADDR=ADDRESS)
    assert login(phone, user.email).status_code == 200
    clock.tick(120)
    laptop = APIClient(HTTP_USER_AGENT="Laptop/2.0", REMOTE_ADDR="192.0.2.4")
    assert login(laptop, user.email).status_code == 200

    sessions = listed(phone)

    assert all(set(session) == SESSION_FIELDS for session in sessions)
    assert sessions == [  # the most recently used first
        {
            "id": public_id(laptop),
            "current": False,
            "state": "full",
            "created_at": iso(clock.now),
            "last_active_at": iso(clock.now),
            "ip": "192.0.2.4",
            "user_agent": "Laptop/2.0",
        },
        {
            "id": public_id(phone),
            "current": True,
            "state": "full",
            "created_at": iso(clock.now - 120),
            "last_active_at": iso(clock.now - 120),
            "ip": ADDRESS,
            "user_agent": AGENT,
        },
    ]
    assert {session["id"]: session["current"] for session in listed(laptop)} == {
        public_id(laptop): True,
        public_id(phone): False,
    }


def test_a_user_agent_is_kept_as_sent_up_to_255_characters(user, clock):
    agent = "Mozilla/5.0 " + "x" * 300
    client = APIClient(HTTP_USER_AGENT=agent)
    assert login(client, user.email).status_code == 200

    (session,) = listed(client)

    assert session["user_agent"] == agent[:255]


def test_a_client_without_a_user_agent_is_listed_with_an_empty_one(logged_in_client):
    (session,) = listed(logged_in_client)

    assert session["user_agent"] == ""


def test_a_pending_session_is_listed_as_pending_and_becomes_full_under_the_same_id(
    user_with_2fa, full_2fa_client, clock
):
    waiting = pending_login(user_with_2fa.email)
    waiting_id = public_id(waiting)

    assert by_id(full_2fa_client)[waiting_id]["state"] == "pending"
    assert by_id(full_2fa_client)[public_id(full_2fa_client)]["state"] == "full"

    clock.tick(30)
    assert validate(waiting, code_for(user_with_2fa.otp_secret, clock)).status_code == 200
    assert public_id(waiting) == waiting_id  # its key rotated, its row (and id) moved with it
    assert by_id(full_2fa_client)[waiting_id]["state"] == "full"


def test_an_expired_session_is_not_listed(logged_in_client, user, clock):
    forgotten = APIClient()
    assert login(forgotten, user.email).status_code == 200
    clock.tick(20 * 60)
    assert alive(logged_in_client)  # used: its idle deadline moves on, the other's does not
    clock.tick(11 * 60)

    assert [session["id"] for session in listed(logged_in_client)] == [public_id(logged_in_client)]
    assert not alive(forgotten)


def test_the_sessions_of_other_accounts_are_not_listed(logged_in_client, user, other_user):
    bob = APIClient()
    assert login(bob, other_user.email).status_code == 200

    assert [session["id"] for session in listed(logged_in_client)] == [public_id(logged_in_client)]
    assert [session["id"] for session in listed(bob)] == [public_id(bob)]


def test_no_answer_holds_a_session_key_or_the_hash_the_table_keeps(user_with_2fa, full_2fa_client, clock):
    other = full_login(user_with_2fa.email, user_with_2fa.otp_secret, clock)
    waiting = pending_login(user_with_2fa.email)
    text = full_2fa_client.get(SESSIONS).content.decode()

    assert len(listed(full_2fa_client)) == 3
    for client in (full_2fa_client, other, waiting):
        key = session_key(client)
        assert key not in text and stored_key(key) not in text
        assert key.upper() not in text and stored_key(key).upper() not in text


def test_a_session_id_is_not_its_key_and_opens_nothing(logged_in_client):
    (session,) = listed(logged_in_client)
    key = session_key(logged_in_client)
    assert session["id"] not in (key, stored_key(key))

    thief = APIClient()
    thief.cookies["sessionid"] = session["id"]

    assert thief.get(ME).status_code == 401
    assert thief.get(SESSIONS).status_code == 401


def test_last_active_at_moves_after_a_minute_of_use_not_at_every_request(logged_in_client, clock):
    started = clock.now
    clock.tick(30)
    assert session_writes(lambda: logged_in_client.get(ME)) == []
    assert listed(logged_in_client)[0]["last_active_at"] == iso(started)

    clock.tick(31)
    assert session_writes(lambda: logged_in_client.get(ME)) == ["UPDATE"]
    assert listed(logged_in_client)[0]["last_active_at"] == iso(started + 61)

    clock.tick(1)
    assert session_writes(lambda: logged_in_client.get(ME)) == []
    (session,) = listed(logged_in_client)
    assert session["last_active_at"] == iso(started + 61)
    assert session["created_at"] == iso(started)


def test_the_listings_one_statement_reads_what_the_orm_would(user_with_2fa, full_2fa_client, clock):
    full_login(user_with_2fa.email, user_with_2fa.otp_secret, clock)
    pending_login(user_with_2fa.email)
    columns = ("public_id", "session_key", "full", "created_at", "last_active_at", "ip", "user_agent")

    read = rows.values(Session, columns, ("user", "=", user_with_2fa.pk), order_by="-last_active_at")

    orm = Session.objects.filter(user=user_with_2fa).order_by("-last_active_at").values_list(*columns)
    assert read == list(orm) and len(read) == 3


# --- DELETE sessions/<id> --------------------------------------------------------------------------


def test_deleting_a_session_ends_it_at_its_next_request(logged_in_client, user, clock):
    other = APIClient()
    assert login(other, user.email).status_code == 200

    response = end(logged_in_client, public_id(other))

    assert response.status_code == 200
    assert response.json() == {"status": "success"}
    assert not alive(other)
    assert other.get(SESSIONS).status_code == 401
    assert alive(logged_in_client)
    assert [session["id"] for session in listed(logged_in_client)] == [public_id(logged_in_client)]


def test_deleting_a_pending_session_ends_it(user_with_2fa, full_2fa_client, clock):
    waiting = pending_login(user_with_2fa.email)
    clock.tick(30)

    assert end(full_2fa_client, public_id(waiting)).status_code == 200

    assert validate(waiting, code_for(user_with_2fa.otp_secret, clock)).status_code == 401


def test_another_accounts_session_is_not_found_and_not_ended(logged_in_client, other_user):
    bob = APIClient()
    assert login(bob, other_user.email).status_code == 200

    response = end(logged_in_client, public_id(bob))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert alive(bob) and alive(logged_in_client)
    assert not SecurityEvent.objects.filter(kind=Kind.SESSIONS_ENDED).exists()


@pytest.mark.parametrize(
    "session_id",
    [
        secrets.token_urlsafe(16),  # shaped like one, names none
        "a%00b",  # a NUL byte (which PostgreSQL refuses in a query)
        "x" * 5000,
        "%C3%A9t%C3%A9",  # not ASCII
        "a%20b",
        "end-others%20",
        "%2e%2e",
    ],
    ids=["unknown", "nul", "long", "unicode", "space", "near-a-route", "dots"],
)
def test_an_unknown_or_malformed_id_is_not_found_and_ends_nothing(logged_in_client, user, session_id):
    other = APIClient()
    assert login(other, user.email).status_code == 200

    response = end(logged_in_client, session_id)

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert alive(other) and alive(logged_in_client)


@pytest.mark.parametrize("named_by", ["key", "stored hash"])
def test_a_session_named_by_its_key_or_its_hash_is_not_found(logged_in_client, user, named_by):
    other = APIClient()
    assert login(other, user.email).status_code == 200
    key = session_key(other)

    response = end(logged_in_client, key if named_by == "key" else stored_key(key))

    assert response.status_code == 404
    assert alive(other)


def test_an_expired_sessions_id_is_not_found(logged_in_client, user, clock):
    forgotten = APIClient()
    assert login(forgotten, user.email).status_code == 200
    forgotten_id = public_id(forgotten)
    clock.tick(20 * 60)
    assert alive(logged_in_client)
    clock.tick(11 * 60)

    assert end(logged_in_client, forgotten_id).json() == NOT_FOUND


def test_deleting_this_session_logs_out(logged_in_client, user):
    other = APIClient()
    assert login(other, user.email).status_code == 200
    key = session_key(logged_in_client)

    response = end(logged_in_client, public_id(logged_in_client))

    assert response.status_code == 200
    assert response.json() == {"status": "success"}
    assert response.cookies["sessionid"].value == ""  # the cookie is cleared
    assert logged_in_client.get(ME).status_code == 401
    assert not Session.objects.filter(session_key=stored_key(key)).exists()
    assert alive(other)


def test_ending_a_session_records_an_event(logged_in_client, user):
    other = APIClient()
    assert login(other, user.email).status_code == 200

    assert end(logged_in_client, public_id(other)).status_code == 200
    assert end(logged_in_client, public_id(logged_in_client)).status_code == 200

    events = SecurityEvent.objects.filter(kind=Kind.SESSIONS_ENDED).order_by("id")
    assert [(event.user_id, event.detail) for event in events] == [
        (user.pk, {"ended": 1, "current": False}),
        (user.pk, {"ended": 1, "current": True}),
    ]


# --- POST sessions/end-others -------------------------------------------------------------------------


def test_end_others_ends_every_other_session_pending_ones_too_and_keeps_this_one(
    user_with_2fa, full_2fa_client, other_user, clock
):
    others = [full_login(user_with_2fa.email, user_with_2fa.otp_secret, clock) for _ in range(2)]
    waiting = pending_login(user_with_2fa.email)
    bob = APIClient()
    assert login(bob, other_user.email).status_code == 200
    this = public_id(full_2fa_client)

    response = full_2fa_client.post(END_OTHER_SESSIONS)

    assert response.status_code == 200
    assert response.json() == {"status": "success", "ended": 3}
    assert not any(alive(client) for client in others)
    assert waiting.get(ME).status_code == 401  # a pending session that lives is a 403 here
    assert alive(full_2fa_client) and alive(bob)
    assert [session["id"] for session in listed(full_2fa_client)] == [this]
    assert session_row(full_2fa_client).public_id == this


def test_end_others_with_no_other_session_ends_none(logged_in_client):
    response = logged_in_client.post(END_OTHER_SESSIONS, {}, format="json")

    assert response.json() == {"status": "success", "ended": 0}
    assert alive(logged_in_client)


def test_end_others_records_an_event_with_the_count(logged_in_client, user):
    other = APIClient()
    assert login(other, user.email).status_code == 200

    assert logged_in_client.post(END_OTHER_SESSIONS).json()["ended"] == 1

    (event,) = SecurityEvent.objects.filter(kind=Kind.SESSIONS_ENDED)
    assert event.user_id == user.pk and event.detail == {"ended": 1, "current": False}


# --- Who may call them ----------------------------------------------------------------------------------

CALLS = {
    "GET sessions": lambda client, session_id: client.get(SESSIONS),
    "DELETE sessions/<id>": lambda client, session_id: end(client, session_id),
    "POST sessions/end-others": lambda client, session_id: client.post(END_OTHER_SESSIONS),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_a_pending_session_is_refused_with_403_and_ends_nothing(user_with_2fa, full_2fa_client, clock, call):
    waiting = pending_login(user_with_2fa.email)

    response = CALLS[call](waiting, public_id(full_2fa_client))

    assert response.status_code == 403
    assert response.json()["status"] == "fail"
    assert alive(full_2fa_client)
    assert waiting.get(ME).status_code == 403  # still pending


@pytest.mark.parametrize("call", list(CALLS))
def test_no_session_is_refused_with_401_and_ends_nothing(logged_in_client, api, call):
    response = CALLS[call](api, public_id(logged_in_client))

    assert response.status_code == 401
    assert response.json()["status"] == "fail"
    assert alive(logged_in_client)
