"""rows.py: the hot path's plain SQL reads and writes give exactly what the ORM gives."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone as django_timezone

from otp_app import rows
from otp_app.models import Session, UserModel
from tests.helpers import make_user

FIELDS = [field.attname for field in UserModel._meta.concrete_fields]


@pytest.fixture
def locked_user(db):
    return make_user(
        otp_enabled=True,
        otp_verified=True,
        otp_secret="JBSWY3DPEHPK3PXP",
        failed_attempts=6,
        last_accepted_step=59_999_999,
        locked_until=datetime(2027, 1, 1, 12, 30, 15, 250_000, tzinfo=UTC),
    )


def test_first_reads_every_field_as_the_orm_does(locked_user):
    UserModel.objects.filter(pk=locked_user.pk).update(last_login=datetime(2026, 5, 1, tzinfo=UTC))
    expected = UserModel.objects.get(pk=locked_user.pk)
    found = rows.first(UserModel, ("id", "=", locked_user.pk))
    assert {name: getattr(found, name) for name in FIELDS} == {name: getattr(expected, name) for name in FIELDS}
    assert isinstance(found.pk, uuid.UUID)
    assert found.locked_until.tzinfo is not None
    assert found.otp_enabled is True and found.is_staff is False
    assert found._state.adding is False  # a row from the database, as `from_db` makes it


def test_first_takes_the_id_as_a_string_too(locked_user):
    assert rows.first(UserModel, ("id", "=", str(locked_user.pk))).pk == locked_user.pk


@pytest.mark.parametrize("user_id", [uuid.uuid4(), "not-a-uuid", "", None, 42])
def test_first_finds_nothing_for_an_unknown_or_malformed_id(locked_user, user_id):
    assert rows.first(UserModel, ("id", "=", user_id)) is None


def test_first_applies_every_condition(locked_user):
    assert rows.first(UserModel, ("id", "=", locked_user.pk), ("is_active", "=", True)) is not None
    UserModel.objects.filter(pk=locked_user.pk).update(is_active=False)
    assert rows.first(UserModel, ("id", "=", locked_user.pk), ("is_active", "=", True)) is None


def test_first_compares_datetimes_with_greater_than(db):
    now = django_timezone.now()
    Session.objects.create(session_key="k" * 32, session_data="x", expire_date=now + timedelta(seconds=5))
    assert rows.first(Session, ("session_key", "=", "k" * 32), ("expire_date", ">", now)).session_data == "x"
    assert rows.first(Session, ("session_key", "=", "k" * 32), ("expire_date", ">", now + timedelta(seconds=5))) is None


def test_update_changes_only_rows_meeting_its_conditions_and_counts_them(locked_user):
    lock = datetime(2027, 2, 3, 4, 5, 6, tzinfo=UTC)
    changes = {"failed_attempts": 7, "locked_until": lock}
    assert rows.update(UserModel, changes, ("id", "=", locked_user.pk), ("failed_attempts", "=", 5)) == 0
    assert rows.update(UserModel, changes, ("id", "=", locked_user.pk), ("failed_attempts", "=", 6)) == 1
    stored = UserModel.objects.get(pk=locked_user.pk)
    assert (stored.failed_attempts, stored.locked_until) == (7, lock)


def test_update_clears_a_value_to_null(locked_user):
    assert rows.update(UserModel, {"locked_until": None}, ("id", "=", str(locked_user.pk))) == 1
    assert UserModel.objects.get(pk=locked_user.pk).locked_until is None


def test_update_of_a_malformed_id_changes_nothing(locked_user):
    assert rows.update(UserModel, {"failed_attempts": 0}, ("id", "=", "not-a-uuid")) == 0
    assert UserModel.objects.get(pk=locked_user.pk).failed_attempts == 6


def test_add_inserts_a_new_row_and_reads_its_automatic_key_back(locked_user):
    from otp_app.models import SecurityEvent

    first = SecurityEvent(
        kind="login_failed", user=locked_user, email="x@example.com", client_address="2001:db8::1", detail={"n": 1}
    )
    second = SecurityEvent(kind="registered", email="y@example.com")
    rows.add(first)
    rows.add(second)
    assert first.pk is not None and second.pk > first.pk
    assert first._state.adding is False
    stored = SecurityEvent.objects.get(pk=first.pk)
    assert (stored.kind, stored.user_id, stored.email, stored.client_address, stored.detail) == (
        "login_failed",
        locked_user.pk,
        "x@example.com",
        "2001:db8::1",
        {"n": 1},
    )
    assert stored.created_at == first.created_at
    assert SecurityEvent.objects.get(pk=second.pk).user_id is None


def test_add_inserts_several_rows_with_one_statement_and_reads_each_key_back(locked_user):
    from otp_app.models import SecurityEvent

    earlier = SecurityEvent.objects.create(kind="registered", email="z@example.com")
    first = SecurityEvent(kind="login_succeeded", user=locked_user, email="x@example.com", detail={"n": 1})
    second = SecurityEvent(kind="passkey_used", user=locked_user, email="x@example.com", detail={"n": 2})

    with CaptureQueriesContext(connection) as queries:
        rows.add(first, second)

    statements = [query["sql"].split()[0] for query in queries]
    assert [verb for verb in statements if verb not in ("SAVEPOINT", "RELEASE")] == ["INSERT"]
    assert earlier.pk < first.pk < second.pk
    assert SecurityEvent.objects.get(pk=first.pk).detail == {"n": 1}
    assert SecurityEvent.objects.get(pk=second.pk).detail == {"n": 2}
    assert not first._state.adding and not second._state.adding


def test_add_without_returning_inserts_row_by_row_and_all_or_nothing(locked_user, monkeypatch):
    from otp_app.models import SecurityEvent

    if connection.vendor != "sqlite":
        pytest.skip("the path of a database without RETURNING reads the last id as SQLite does")
    monkeypatch.setattr(connection.features, "can_return_columns_from_insert", False)
    first, second = SecurityEvent(kind="registered", email="f@example.com"), SecurityEvent(kind="registered")
    rows.add(first, second)
    assert first.pk < second.pk
    assert SecurityEvent.objects.get(pk=first.pk).email == "f@example.com"

    read_back = connection.ops.last_insert_id
    calls = []

    def fails_the_second(*args):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("the second row failed")
        return read_back(*args)

    monkeypatch.setattr(connection.ops, "last_insert_id", fails_the_second)
    with pytest.raises(RuntimeError):
        rows.add(SecurityEvent(kind="passkey_used"), SecurityEvent(kind="passkey_used"))
    assert not SecurityEvent.objects.filter(kind="passkey_used").exists()


def test_add_refuses_rows_of_two_models_or_a_mix_of_new_and_keyed_rows(locked_user):
    from otp_app.models import SecurityEvent

    with pytest.raises(TypeError):
        rows.add(SecurityEvent(kind="registered"), UserModel(email="q@example.com"))
    with pytest.raises(TypeError):
        rows.add(SecurityEvent(kind="registered"), SecurityEvent(pk=10**9, kind="registered"))
    assert not SecurityEvent.objects.filter(kind="registered").exists()


def test_a_value_of_the_wrong_type_raises_instead_of_reading_as_no_row(locked_user):
    # A malformed id is a client's mistake (no row); a list for a number is the caller's bug.
    with pytest.raises(TypeError):
        rows.first(UserModel, ("failed_attempts", "=", [6]))
    with pytest.raises(TypeError):
        rows.update(UserModel, {"failed_attempts": 0}, ("failed_attempts", "=", [6]))
