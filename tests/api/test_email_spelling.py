"""One mailbox is one account, however its address is spelled: Unicode compatibility forms
(fullwidth, circled letters), invisible format characters (soft hyphens, zero-width spaces),
letter case and the domain's IDNA forms all fold into one spelling before the uniqueness check."""

import importlib

import pytest
from django.apps import apps

from otp_app.models import UserModel, normalise_email
from tests.helpers import EMAIL_TAKEN, PASSWORD, REGISTER, login

normalise_emails = importlib.import_module("otp_app.migrations.0008_normalise_emails").normalise_emails

SPELLINGS = [
    pytest.param("ann@ｅｘａｍｐｌｅ.com", id="fullwidth-domain"),
    pytest.param("ａｎｎ@example.com", id="fullwidth-local-part"),
    pytest.param("ann@ⓔxample.com", id="circled-letter"),
    pytest.param("ann@ex\u00adample.com", id="soft-hyphen-in-domain"),
    pytest.param("a\u00adnn@example.com", id="soft-hyphen-in-local-part"),
    pytest.param("ann@exam\u200bple.com", id="zero-width-space"),
    pytest.param("ANN@EXAMPLE.COM", id="upper-case"),
    pytest.param(" Ａnn@Ex\u00adAMPLE.com ", id="mixed"),
]


def register(api, email):
    return api.post(REGISTER, {"email": email, "name": "Ann", "password": PASSWORD}, format="json")


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_second_registration_in_another_spelling_is_409(api, db, spelling):
    assert register(api, "ann@example.com").status_code == 201

    response = register(api, spelling)

    assert response.status_code == 409
    assert response.json() == EMAIL_TAKEN
    assert UserModel.objects.count() == 1


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_registration_in_another_spelling_is_stored_in_the_one_spelling(api, db, spelling):
    assert register(api, spelling).status_code == 201

    assert list(UserModel.objects.values_list("email", flat=True)) == ["ann@example.com"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_login_in_another_spelling_opens_the_one_account(api, user, clock, spelling):
    response = login(api, spelling)

    assert response.status_code == 200
    assert response.json()["user"]["email"] == "ann@example.com"


def test_an_idna_domain_is_one_account_in_unicode_and_in_ascii(api, db):
    assert register(api, "ann@münchen.de").status_code == 201

    assert register(api, "ann@xn--mnchen-3ya.de").status_code == 409
    assert UserModel.objects.get().email == "ann@münchen.de"


@pytest.mark.parametrize("email", ["ann@-example.com", "ann@exa\u2764mple.com"], ids=["hyphen-first", "emoji"])
def test_a_domain_that_idna_refuses_is_400(api, db, email):
    response = register(api, email)

    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "fail" and "email" in body["errors"]
    assert not UserModel.objects.exists()


def test_login_with_a_domain_that_idna_refuses_is_a_wrong_login(api, user, clock):
    response = login(api, "ann@exa\u2764mple.com")

    assert response.status_code == 400
    assert response.json() == {"status": "fail", "message": "Incorrect email or password"}


def test_the_upgrade_folds_stored_emails_that_no_other_account_has(db):
    UserModel.objects.bulk_create(
        [
            UserModel(email="ann@ｅｘａｍｐｌｅ.com", name="Ann"),  # bulk_create stores it as given
            UserModel(email="bob@example.com", name="Bob"),
            UserModel(email="bob@ⓔxample.com", name="Bob 2"),
        ]
    )

    normalise_emails(apps, None)

    emails = sorted(UserModel.objects.values_list("email", flat=True))
    assert emails == ["ann@example.com", "bob@example.com", "bob@ⓔxample.com"]


def test_normalising_is_idempotent():
    for spelling in ["ann@ｅｘａｍｐｌｅ.com", "ann@münchen.de", "ann@-example.com"]:
        assert normalise_email(normalise_email(spelling)) == normalise_email(spelling)
