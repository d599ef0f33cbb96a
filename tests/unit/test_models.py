"""UserModel: one account per email in any letter case (kept by the database), the
createsuperuser command, and how passwords are hashed (upgraded at login: tests/api/test_login.py)."""

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from otp_app.models import UserModel
from tests.helpers import PASSWORD, make_user


def test_database_refuses_an_email_differing_only_in_case_on_insert(db):
    make_user("ann@example.com")

    # bulk_create skips save(), so only the database's constraint stands in the way.
    with pytest.raises(IntegrityError), transaction.atomic():
        UserModel.objects.bulk_create([UserModel(email="ANN@Example.COM", name="Ann", password="!")])


def test_database_refuses_an_email_differing_only_in_case_on_update(db):
    make_user("ann@example.com")
    bob = make_user("bob@example.com", "Bob")

    with pytest.raises(IntegrityError), transaction.atomic():
        UserModel.objects.filter(pk=bob.pk).update(email="Ann@EXAMPLE.com")


def test_save_trims_and_lower_cases_the_email(db):
    user = UserModel(email="  Ann@Example.COM ", name="Ann")
    user.set_password(PASSWORD)
    user.save()

    assert UserModel.objects.get(pk=user.pk).email == "ann@example.com"


def test_natural_key_lookup_ignores_letter_case(db):
    user = make_user("ann@example.com")

    assert UserModel.objects.get_by_natural_key(" ANN@example.com") == user


def test_create_user_requires_an_email(db):
    with pytest.raises(ValueError):
        UserModel.objects.create_user("", "Ann", PASSWORD)


def test_user_is_keyed_by_email_with_name_required_and_no_username():
    assert UserModel.USERNAME_FIELD == "email"
    assert UserModel.REQUIRED_FIELDS == ["name"]
    with pytest.raises(FieldDoesNotExist):
        UserModel._meta.get_field("username")


def test_createsuperuser_runs_non_interactively_with_email_and_name(db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)

    call_command("createsuperuser", interactive=False, email="Root@Example.com", name="Root", verbosity=0)

    root = UserModel.objects.get()
    assert (root.email, root.name, root.is_staff, root.is_superuser, root.is_active) == (
        "root@example.com",
        "Root",
        True,
        True,
        True,
    )
    assert root.check_password(PASSWORD)
    assert root.password.startswith("argon2$argon2id$")


def test_createsuperuser_refuses_an_email_taken_in_another_case(db, monkeypatch):
    make_user("root@example.com", "Root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)

    with pytest.raises(CommandError):
        call_command("createsuperuser", interactive=False, email="ROOT@example.com", name="Root 2", verbosity=0)

    assert UserModel.objects.count() == 1


def test_new_passwords_are_hashed_with_argon2id_at_owasp_cost(db):
    user = make_user()

    assert user.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in user.password
