"""POST /api/auth/register: the documented success and failure bodies, email normalisation, the
password validators, and how the password is stored."""

import pytest

from otp_app.models import UserModel
from tests.helpers import EMAIL_TAKEN, PASSWORD, REGISTERED, make_user


def register(api, **fields):
    body = {"email": "ann@example.com", "name": "Ann", "password": PASSWORD, **fields}
    body = {key: value for key, value in body.items() if value is not ...}  # `...` drops a field
    return api.post("/api/auth/register", body, format="json")


def assert_validation_error(response, field):
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"status", "message", "errors"}
    assert body["status"] == "fail"
    assert isinstance(body["message"], str) and body["message"]
    assert field in body["errors"]
    assert body["errors"][field] and all(isinstance(message, str) for message in body["errors"][field])
    return body["errors"][field]


def test_register_answers_201_with_the_documented_body(api, db):
    response = register(api)

    assert response.status_code == 201
    assert response.json() == REGISTERED
    assert UserModel.objects.filter(email="ann@example.com", name="Ann").exists()


def test_register_without_password_confirm_is_accepted(api, db):
    assert register(api, passwordConfirm=...).status_code == 201


def test_register_with_matching_password_confirm_is_accepted(api, db):
    assert register(api, passwordConfirm=PASSWORD).status_code == 201


def test_register_with_mismatched_password_confirm_is_400_on_password_confirm(api, db):
    response = register(api, passwordConfirm=PASSWORD + "!")

    assert_validation_error(response, "passwordConfirm")
    assert not UserModel.objects.exists()


def test_register_stores_the_email_trimmed_and_lower_cased(api, db):
    assert register(api, email="  Ann.Lee@Example.COM ").status_code == 201

    assert UserModel.objects.get().email == "ann.lee@example.com"


@pytest.mark.parametrize("email", ["ann@example.com", "ANN@EXAMPLE.COM", "Ann@Example.com", " ann@example.com "])
def test_register_with_existing_email_in_any_case_is_409(api, db, email):
    make_user("ann@example.com")

    response = register(api, email=email)

    assert response.status_code == 409
    assert response.json() == EMAIL_TAKEN
    assert UserModel.objects.count() == 1


def test_register_with_existing_email_in_other_case_leaves_the_first_account_unchanged(api, db):
    original = make_user("ann@example.com", "Ann")

    register(api, email="ANN@example.com", name="Mallory", password="another long passphrase")

    stored = UserModel.objects.get()
    assert (stored.pk, stored.name, stored.password) == (original.pk, "Ann", original.password)


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"email": ...}, "email"),
        ({"email": ""}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "ann@"}, "email"),
        ({"email": "a" * 250 + "@example.com"}, "email"),
        ({"name": ...}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 256}, "name"),
        ({"password": ...}, "password"),
        ({"password": ""}, "password"),
        ({"password": "p" * 129}, "password"),
    ],
)
def test_register_with_invalid_field_is_400_with_message_and_field_errors(api, db, fields, field):
    response = register(api, **fields)

    assert_validation_error(response, field)
    assert not UserModel.objects.exists()


def test_register_with_several_invalid_fields_lists_each_field(api, db):
    response = api.post("/api/auth/register", {"email": "nope", "password": PASSWORD}, format="json")

    assert_validation_error(response, "email")
    assert_validation_error(response, "name")


@pytest.mark.parametrize(
    "email, name, password, expected",
    [
        ("ann@example.com", "Ann", "Xk7#qpz", "too short"),
        ("ann@example.com", "Ann", "iloveyou", "too common"),
        ("ann@example.com", "Ann", "73829104658273", "entirely numeric"),
        ("zebrafinch@example.com", "Ann", "zebrafinch@example", "too similar to the email"),
        ("ann@example.com", "Montgomery Scott", "montgomeryscott", "too similar to the name"),
    ],
)
def test_register_reports_password_validator_failures_in_errors_password(api, db, email, name, password, expected):
    response = register(api, email=email, name=name, password=password)

    messages = assert_validation_error(response, "password")
    assert any(expected in message for message in messages), messages
    assert not UserModel.objects.exists()


def test_register_stores_the_password_as_an_argon2id_hash(api, db):
    register(api)

    stored = UserModel.objects.get().password
    assert stored.startswith("argon2$argon2id$")
    assert PASSWORD not in stored
    assert UserModel.objects.get().check_password(PASSWORD)


@pytest.mark.parametrize(
    "fields",
    [{}, {"passwordConfirm": PASSWORD + "!"}, {"name": ...}, {"email": "ANN@example.com"}],
    ids=["created", "mismatch", "invalid", "taken"],
)
def test_register_response_never_contains_the_password_or_its_hash(api, db, fields):
    if "email" in fields:
        make_user("ann@example.com")

    response = register(api, **fields)

    content = response.content.decode()
    assert PASSWORD not in content
    assert "argon2" not in content and "pbkdf2" not in content
    for stored in UserModel.objects.values_list("password", flat=True):
        assert stored not in content
