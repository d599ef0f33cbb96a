"""The cheap paths stay cheap: how many statements each hot request makes, and what it
writes. Counts, not timings: the benchmark (bench/) measures time; these catch a lost lever."""

import random
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.core.cache import cache
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from rest_framework.exceptions import ValidationError

from otp_app import serializers, services, throttles
from otp_app.models import Session, UserModel
from otp_app.session_backends import db as session_db
from otp_app.session_backends.db import stored_key
from tests.helpers import PASSWORD, VALIDATE, code_for, login

SessionStore = import_module(settings.SESSION_ENGINE).SessionStore


def statements(run):
    with CaptureQueriesContext(connection) as captured:
        response = run()
    return response, [query["sql"] for query in captured.captured_queries]


def writes_to(table, sql):
    return [query for query in sql if table in query and query.split()[0] in ("INSERT", "UPDATE", "DELETE")]


def test_wrong_code_reads_session_and_account_and_writes_one_conditional_update(pending_client, clock):
    response, sql = statements(lambda: pending_client.post(VALIDATE, {"token": "000000"}, format="json"))
    assert response.status_code == 400
    # The session with its account in one SELECT, and the count.
    assert len(sql) == 2 and sql[0].startswith("SELECT")
    assert len(writes_to(UserModel._meta.db_table, sql)) == 1


def test_locked_account_is_refused_from_the_rows_read_without_a_write(pending_client, user_with_2fa, clock):
    for _ in range(settings.TWOFA_LOCKOUT_THRESHOLD):
        pending_client.post(VALIDATE, {"token": "000000"}, format="json")
    response, sql = statements(
        lambda: pending_client.post(VALIDATE, {"token": code_for(user_with_2fa.otp_secret, clock)}, format="json")
    )
    assert response.status_code == 429
    assert len(sql) == 1 and sql[0].startswith("SELECT")


def test_locked_account_is_refused_before_the_secret_is_decrypted(pending_client, clock, monkeypatch):
    for _ in range(settings.TWOFA_LOCKOUT_THRESHOLD):
        pending_client.post(VALIDATE, {"token": "000000"}, format="json")

    def no_decrypting(token):
        raise AssertionError("a locked account's secret was decrypted")

    monkeypatch.setattr(services.crypto, "decrypt", no_decrypting)
    assert pending_client.post(VALIDATE, {"token": "000000"}, format="json").status_code == 429


def test_me_reads_the_session_and_the_account_only(logged_in_client):
    response, sql = statements(lambda: logged_in_client.get("/api/auth/me"))
    assert response.status_code == 200
    assert len(sql) == 1 and sql[0].startswith("SELECT")


def test_right_code_is_accepted_by_one_update_of_the_account(pending_client, user_with_2fa, clock):
    token = code_for(user_with_2fa.otp_secret, clock)
    response, sql = statements(lambda: pending_client.post(VALIDATE, {"token": token}, format="json"))
    assert response.status_code == 200
    # The code's acceptance (also resetting the count) and Django's last_login.
    account_writes = writes_to(UserModel._meta.db_table, sql)
    assert len(account_writes) == 2 and "last_accepted_step" in account_writes[0]


def test_new_session_key_is_written_once_with_its_data(pending_client, user_with_2fa, clock):
    pending_key = pending_client.cookies["sessionid"].value
    token = code_for(user_with_2fa.otp_secret, clock)
    response, sql = statements(lambda: pending_client.post(VALIDATE, {"token": token}, format="json"))
    assert response.status_code == 200
    session_writes = writes_to(Session._meta.db_table, sql)
    # One UPDATE moves the pending session's row to the new key, with its new data.
    assert [query.split()[0] for query in session_writes] == ["UPDATE"]
    new_key = pending_client.cookies["sessionid"].value
    assert new_key != pending_key
    assert not Session.objects.filter(session_key=stored_key(pending_key)).exists()
    assert SessionStore(new_key).get("_auth_user_id") == str(user_with_2fa.pk)


def test_a_rotated_key_that_collides_is_drawn_again_and_never_overwrites_a_session(db, monkeypatch):
    taken, rotating = SessionStore(), SessionStore()
    taken["owner"], rotating["owner"] = "someone else", "me"
    taken.save()
    rotating.save()
    old_key = rotating.session_key
    rotating = SessionStore(old_key)
    keys = iter([taken.session_key, "n" * 32])
    monkeypatch.setattr(session_db, "new_key", lambda: next(keys))
    rotating.cycle_key()
    rotating.save()
    assert rotating.session_key == "n" * 32
    assert SessionStore("n" * 32)["owner"] == "me"
    assert SessionStore(taken.session_key)["owner"] == "someone else"
    assert not Session.objects.filter(session_key=stored_key(old_key)).exists()


def test_a_session_ended_while_its_key_was_rotated_is_not_written_again(logged_in_client, db):
    key = logged_in_client.cookies["sessionid"].value
    store = SessionStore(key)
    store.cycle_key()
    Session.objects.filter(session_key=stored_key(key)).delete()  # ended by another request meanwhile
    with pytest.raises(Exception) as raised:
        store.save()
    assert type(raised.value).__name__ == "UpdateError"
    assert not Session.objects.filter(session_key=stored_key(store.session_key)).exists()


def test_login_writes_its_session_row_once(user, api, clock):
    response, sql = statements(lambda: login(api, user.email))
    assert response.status_code == 200
    assert [query.split()[0] for query in writes_to(Session._meta.db_table, sql)] == ["INSERT"]


def test_a_new_key_that_collides_is_drawn_again_and_never_overwrites_a_session(db, monkeypatch):
    taken = SessionStore()
    taken["owner"] = "someone else"
    taken.save()
    keys = iter([taken.session_key, "n" * 32])
    monkeypatch.setattr(session_db, "new_key", lambda: next(keys))
    fresh = SessionStore()
    fresh["owner"] = "me"
    fresh.save()
    assert fresh.session_key == "n" * 32
    assert SessionStore(taken.session_key)["owner"] == "someone else"
    assert SessionStore("n" * 32)["owner"] == "me"


def test_a_session_key_is_160_random_bits_in_django_key_characters(db):
    keys = set()
    for _ in range(50):
        store = SessionStore()
        store["n"] = 1
        store.save()
        assert len(store.session_key) == 32 and set(store.session_key) <= set(VALID_KEY_CHARS)
        keys.add(store.session_key)
    assert len(keys) == 50
    assert set(SessionStore()._get_new_session_key()) <= set(VALID_KEY_CHARS)


def test_a_session_key_is_drawn_with_one_read_of_the_system_generator(db, monkeypatch):
    # Django's get_random_string reads it about 45 times for 32 characters.
    reads = []
    real = random._urandom
    monkeypatch.setattr(random, "_urandom", lambda n: reads.append(n) or real(n))
    store = SessionStore()
    store.create()
    assert reads == [20]


def test_a_right_password_leaves_the_login_limits_as_they_were(user, api, clock):
    # Each attempt is counted before its hash (so racing guesses cannot pass the limit); a right
    # password takes its attempt back.
    assert login(api, user.email, "wrong password!").status_code == 400
    counts = limit_counts()
    assert sorted(counts.values()) == [1, 1]  # a failure is counted, per limit
    assert login(api, user.email).status_code == 200
    assert limit_counts() == counts


def test_a_login_refused_by_its_limit_writes_nothing_to_the_cache(user, api, clock, monkeypatch, settings):
    settings.TWOFA_LOGIN_FAILURES_PER_ACCOUNT = "1/15m"
    assert login(api, user.email, "wrong password!").status_code == 400
    written = []
    for method in ("add", "set", "incr", "decr", "set_many"):
        original = getattr(cache, method)
        monkeypatch.setattr(
            cache,
            method,
            lambda *args, _original=original, _name=method, **kwargs: (
                written.append((_name, args[0])),
                _original(*args, **kwargs),
            )[1],
        )
    with CaptureQueriesContext(connection) as queries:
        assert login(api, user.email).status_code == 429
    assert written == []
    assert [query["sql"] for query in queries if not query["sql"].startswith("SELECT")] == []


def test_a_login_counts_each_limit_with_one_statement_and_takes_it_back_with_one(user, api, clock, monkeypatch):
    monkeypatch.setattr(throttles, "PRUNE_ONE_IN", 0)
    # Without Redis the counts are rows of their own table: one read, one upsert per limit, and
    # for a right password one guarded UPDATE per limit; not Django's database cache (a read, a
    # COUNT(*) of the whole table and a write for each change).
    with CaptureQueriesContext(connection) as queries:
        assert login(api, user.email).status_code == 200
    counting = [query["sql"] for query in queries if "loginattempts" in query["sql"] or "otp_cache" in query["sql"]]
    if throttles._in_database():
        assert [sql.split()[0] for sql in counting] == ["SELECT", "INSERT", "INSERT", "UPDATE", "UPDATE"]
    else:
        assert counting == []


def limit_counts() -> dict:
    request = RequestFactory().post("/api/auth/login", REMOTE_ADDR="127.0.0.1")
    return throttles.counts_of(list(throttles._counters(request, "ann@example.com")))


def test_a_session_row_names_its_account_pending_and_full(pending_client, user_with_2fa, clock):
    pending_key = pending_client.cookies["sessionid"].value
    assert Session.objects.get(session_key=stored_key(pending_key)).user_id == user_with_2fa.pk
    token = code_for(user_with_2fa.otp_secret, clock)
    assert pending_client.post(VALIDATE, {"token": token}, format="json").status_code == 200
    assert (
        Session.objects.get(session_key=stored_key(pending_client.cookies["sessionid"].value)).user_id
        == user_with_2fa.pk
    )


def test_deleting_an_account_deletes_its_sessions(logged_in_client, user):
    assert Session.objects.filter(user=user).count() == 1
    user.delete()
    assert not Session.objects.exists()
    assert logged_in_client.get("/api/auth/me").status_code == 401


def test_the_account_read_with_the_session_is_the_one_the_session_names(logged_in_client, user, other_user):
    # A session row whose column named another account (it never does) would still be answered
    # for the account in the signed session data, never for the column's.
    key = logged_in_client.cookies["sessionid"].value
    Session.objects.filter(session_key=stored_key(key)).update(user=other_user)
    response = logged_in_client.get("/api/auth/me")
    assert response.status_code == 200 and response.json()["user"]["email"] == user.email


def test_login_records_last_login(user, api, clock):
    assert UserModel.objects.get(pk=user.pk).last_login is None
    assert login(api, user.email).status_code == 200
    assert UserModel.objects.get(pk=user.pk).last_login is not None


def test_a_session_saved_after_its_account_was_deleted_reads_as_no_login(user, api):
    from django.contrib import auth

    from otp_app import backends

    store = SessionStore()
    store[auth.SESSION_KEY] = str(user.pk)
    store[auth.BACKEND_SESSION_KEY] = backends.PATH
    store[auth.HASH_SESSION_KEY] = user.get_session_auth_hash()
    UserModel.objects.filter(pk=user.pk).delete()
    store.save()  # a request that was still running: no error
    api.cookies["sessionid"] = store.session_key
    assert api.get("/api/auth/me").status_code == 401


def test_a_session_deleted_while_its_request_ran_is_not_written_again(logged_in_client, db):
    key = logged_in_client.cookies["sessionid"].value
    store = SessionStore(key)
    store["seen"] = True
    Session.objects.filter(session_key=stored_key(key)).delete()
    with pytest.raises(Exception) as raised:
        store.save()
    assert type(raised.value).__name__ == "UpdateError"
    assert not Session.objects.filter(session_key=stored_key(key)).exists()


# Bodies as clients send them, valid and not, for the request serializers' shared instances.
BODIES = [
    {"token": "123456"},
    {"token": " 123 456 ", "user_id": None},
    {"token": "123456", "user_id": "0b5f6a2e-3c1d-4e8f-9a7b-6c5d4e3f2a1b", "extra": [1, 2]},
    {"token": "abcde-fghij"},
    {},
    {"token": ""},
    {"token": "   "},
    {"token": None},
    {"token": 123456},
    {"token": ["123456"]},
    {"token": "1" * 65},
    {"token": "12\x003456"},
    {"token": "123456", "user_id": "not-a-uuid"},
    {"token": "123456", "user_id": 5},
    {"email": "Ann@Example.com ", "name": "Ann", "password": PASSWORD},
    {"email": "ann@example.com", "name": "Ann", "password": PASSWORD, "passwordConfirm": "other"},
    {"email": "not an email", "name": "", "password": "short"},
    {"email": "ann@example.com", "password": PASSWORD},
    {"email": "ann@example.com", "password": 5},
    None,
    [],
    ["token"],
    "123456",
    42,
]
REQUEST_SERIALIZERS = [
    serializers.TokenSerializer,
    serializers.DisableSerializer,
    serializers.GenerateSerializer,
    serializers.LoginSerializer,
    serializers.RegisterSerializer,
]


@pytest.mark.django_db
@pytest.mark.parametrize("serializer_class", REQUEST_SERIALIZERS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("body", BODIES, ids=repr)
def test_a_shared_serializer_validates_exactly_as_a_fresh_one(serializer_class, body):
    fresh = serializer_class(data=body)
    if fresh.is_valid():
        assert serializers.validated_data(serializer_class, body) == fresh.validated_data
    else:
        with pytest.raises(ValidationError) as raised:
            serializers.validated_data(serializer_class, body)
        assert raised.value.detail == fresh.errors


def test_a_valid_body_is_checked_without_building_a_serializer(monkeypatch):
    body = {"token": "123456"}
    serializers.validated_data(serializers.TokenSerializer, body)  # the shared instance exists

    def building(*args, **kwargs):
        raise AssertionError("a serializer was built for a valid body")

    monkeypatch.setattr(serializers.TokenSerializer, "__init__", building)
    assert serializers.validated_data(serializers.TokenSerializer, body) == {"token": "123456"}
