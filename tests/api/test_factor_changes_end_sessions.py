"""A change of an account's factors or password ends every other session of the account, full or
pending; the session that made it stays, and other accounts' sessions are untouched. So does an
administrator's change (2FA reset, password page, a passkey removed in the admin).

The change, the events that report it (and their emails) and the end of the sessions are one
transaction: should ending the sessions fail, nothing of the change is left. A change refused for
a wrong code ends nothing, and the wrong code still counts.
"""

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass

import pytest
from django.db import DatabaseError
from django.test import Client
from django_tasks_db.models import DBTaskResult
from rest_framework.test import APIClient

from otp_app import services, totp
from otp_app.models import Passkey, RecoveryCode, SecurityEvent, UserModel
from tests.api.test_security_emails import DATABASE  # the task backend of production
from tests.helpers import (
    ADMIN_USERS,
    DISABLE,
    INVALID,
    ME,
    PASSKEYS,
    PASSWORD,
    PASSWORD_PATH,
    RECOVERY_CODES,
    add_passkey,
    admin_form,
    code_for,
    disable,
    full_login,
    generated_secret,
    is_logged_in,
    login,
    make_user,
    pending_login,
    verify,
    wrong_code,
)
from tests.support.authenticator import SoftwareAuthenticator

Kind = SecurityEvent.Kind
NEW_PASSWORD = "Harbour-Violet-Compass-19?"


@dataclass
class Change:
    user: UserModel
    secret: str | None  # the account's TOTP secret in force before the change, if any
    kind: str = ""  # the event that reports the change (none for a refused one)
    _: KW_ONLY
    run: Callable  # makes the change (or tries to): one request
    stays: Callable[[], bool]  # whether the session that made it is still logged in
    status: int = 200  # the answer to a change made


# --- Who changes what ----------------------------------------------------------------------------


def ann(clock, *, with_totp: bool = True) -> tuple[UserModel, str | None, APIClient]:
    """Ann, with TOTP on or no factor at all, and a full session of hers that proved the second
    factor just now (or her password, without one)."""
    if not with_totp:
        user = make_user()
        client = APIClient()
        assert login(client, user.email).status_code == 200
        return user, None, client
    secret = totp.new_secret()
    user = make_user(otp_enabled=True, otp_verified=True, otp_secret=secret)
    return user, secret, full_login(user.email, secret, clock)


def logged_in(client) -> Callable[[], bool]:
    return lambda: client.get(ME).status_code == 200


def administrator() -> Client:
    root = make_user("root@example.com", "Root", is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(root)
    return admin


def passkey_of(client) -> str:
    authenticator = SoftwareAuthenticator(origin="http://testserver", rp_id="localhost")
    response = add_passkey(client, authenticator)
    assert response.status_code == 201, response.content
    return response.json()["passkey"]["id"]


def switched_on(clock) -> Change:
    user, _, client = ann(clock, with_totp=False)
    secret = generated_secret(client)
    return Change(
        user, None, Kind.OTP_ENABLED, run=lambda: verify(client, code_for(secret, clock)), stays=logged_in(client)
    )


def reenrolled(clock) -> Change:
    user, secret, client = ann(clock)
    new = generated_secret(client)
    return Change(
        user, secret, Kind.SECRET_REENROLLED, run=lambda: verify(client, code_for(new, clock)), stays=logged_in(client)
    )


def switched_off(clock) -> Change:
    user, secret, client = ann(clock)
    return Change(user, secret, Kind.OTP_DISABLED, run=lambda: disable(client), stays=logged_in(client))


def passkey_added(clock) -> Change:
    user, secret, client = ann(clock)
    authenticator = SoftwareAuthenticator(origin="http://testserver", rp_id="localhost")
    return Change(
        user,
        secret,
        Kind.PASSKEY_ADDED,
        run=lambda: add_passkey(client, authenticator),
        stays=logged_in(client),
        status=201,
    )


def passkey_removed(clock) -> Change:
    user, secret, client = ann(clock)
    passkey = passkey_of(client)
    return Change(
        user,
        secret,
        Kind.PASSKEY_REMOVED,
        run=lambda: client.delete(f"{PASSKEYS}/{passkey}", {}, format="json"),
        stays=logged_in(client),
    )


def codes_regenerated(clock) -> Change:
    user, secret, client = ann(clock)

    def run():
        clock.tick(30)  # a code of a step not used yet
        return client.post(RECOVERY_CODES, {"token": code_for(secret, clock)}, format="json")

    return Change(user, secret, Kind.RECOVERY_CODES_REGENERATED, run=run, stays=logged_in(client))


def password_changed(clock) -> Change:
    user, secret, client = ann(clock)
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    return Change(
        user,
        secret,
        Kind.PASSWORD_CHANGED,
        run=lambda: client.post(PASSWORD_PATH, body, format="json"),
        stays=logged_in(client),
    )


def reset_by_admin(clock) -> Change:
    user, secret, _ = ann(clock)
    admin = administrator()
    action = {"action": "reset_two_factor", "_selected_action": [str(user.pk)]}
    return Change(
        user,
        secret,
        Kind.OTP_RESET_BY_ADMIN,
        run=lambda: admin.post(ADMIN_USERS, action),
        stays=lambda: is_logged_in(admin),
        status=302,
    )


def password_set_by_admin(clock) -> Change:
    user, secret, _ = ann(clock)
    admin = administrator()

    def run():
        page = f"{ADMIN_USERS}{user.pk}/password/"
        form = admin_form(admin.get(page).content.decode())
        return admin.post(page, {**form, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    return Change(user, secret, Kind.PASSWORD_CHANGED, run=run, stays=lambda: is_logged_in(admin), status=302)


def passkey_removed_by_admin(clock) -> Change:
    user, secret, client = ann(clock)
    passkey_of(client)
    admin = administrator()

    def run():
        page = f"{ADMIN_USERS}{user.pk}/change/"
        form = admin_form(admin.get(page).content.decode())
        assert form["passkeys-TOTAL_FORMS"] == "1"
        return admin.post(page, {**form, "passkeys-0-DELETE": "on"})

    return Change(user, secret, Kind.PASSKEY_REMOVED, run=run, stays=lambda: is_logged_in(admin), status=302)


CHANGES = {
    "otp/verify switches 2FA on": switched_on,
    "otp/generate and otp/verify replace the secret": reenrolled,
    "otp/disable": switched_off,
    "a passkey added": passkey_added,
    "a passkey removed": passkey_removed,
    "recovery codes regenerated": codes_regenerated,
    "password changed": password_changed,
    "admin: 2FA reset": reset_by_admin,
    "admin: password page": password_set_by_admin,
    "admin: passkey deleted": passkey_removed_by_admin,
}
EACH_CHANGE = pytest.mark.parametrize("name", list(CHANGES))


# --- The account's other sessions, and another account's --------------------------------------------


@dataclass
class Others:
    full: APIClient
    pending: APIClient | None  # an account without a second factor has no pending session
    bob: APIClient  # another account's

    def states(self) -> dict[str, int]:
        """What `me` answers each: 200 a full session, 403 a pending one, 401 one that ended."""
        clients = {"full": self.full, "pending": self.pending, "bob": self.bob}
        return {name: client.get(ME).status_code for name, client in clients.items() if client is not None}


def open_others(change: Change, clock) -> Others:
    if change.secret is None:
        full = APIClient()
        assert login(full, change.user.email).status_code == 200
    else:
        full = full_login(change.user.email, change.secret, clock)
    pending = pending_login(change.user.email) if change.secret is not None else None
    bob = APIClient()
    make_user("bob@example.com", "Bob")
    assert login(bob, "bob@example.com").status_code == 200
    others = Others(full, pending, bob)
    assert others.states() == {"full": 200, "bob": 200} | ({"pending": 403} if pending else {})
    return others


def factors(user) -> tuple:
    """What a change of factors or password changes, as stored."""
    row = UserModel.objects.get(pk=user.pk)
    return (
        row.password,
        row.otp_enabled,
        row.otp_verified,
        row.otp_secret,
        row.pending_secret,
        row.recovery_codes_left,
        row.passkey_count,
        sorted(str(pk) for pk in Passkey.objects.filter(user=user).values_list("pk", flat=True)),
        sorted(RecoveryCode.objects.filter(user=user).values_list("code_hash", "used_at")),
    )


def events_of(change: Change) -> int:
    """How many events of the change's kind the account has."""
    return SecurityEvent.objects.filter(kind=change.kind, user=change.user).count()


@EACH_CHANGE
def test_a_change_ends_the_accounts_other_sessions_and_keeps_its_own(db, clock, name):
    change = CHANGES[name](clock)
    others = open_others(change, clock)
    before = factors(change.user)

    response = change.run()

    assert response.status_code == change.status, response.content
    assert factors(change.user) != before  # it was a change
    assert others.states() == {"full": 401, "bob": 200} | ({"pending": 401} if others.pending else {})
    assert change.stays()
    assert events_of(change) == 1


@EACH_CHANGE
def test_a_change_its_email_and_the_end_of_the_sessions_are_one_transaction(db, clock, settings, monkeypatch, name):
    settings.TASKS = DATABASE
    change = CHANGES[name](clock)
    others = open_others(change, clock)
    before, tasks_before = factors(change.user), DBTaskResult.objects.count()
    seen = []

    def failing_end_sessions(**kwargs):
        seen.append((factors(change.user), DBTaskResult.objects.count(), events_of(change)))
        raise DatabaseError("the sessions could not be ended")

    monkeypatch.setattr(services, "end_sessions", failing_end_sessions)

    with pytest.raises(DatabaseError):
        change.run()

    # When the sessions were to end, the change had been made and its email enqueued...
    ((factors_then, tasks_then, events_then),) = seen
    assert factors_then != before
    assert tasks_then > tasks_before and events_then > 0
    # ... and none of it is left.
    assert factors(change.user) == before
    assert DBTaskResult.objects.count() == tasks_before
    assert events_of(change) == 0
    assert others.states() == {"full": 200, "bob": 200} | ({"pending": 403} if others.pending else {})


@EACH_CHANGE
def test_a_change_enqueues_its_security_email(db, clock, settings, name):
    settings.TASKS = DATABASE
    change = CHANGES[name](clock)
    DBTaskResult.objects.all().delete()

    assert change.run().status_code == change.status

    kinds = [task.args_kwargs["kwargs"]["kind"] for task in DBTaskResult.objects.all()]
    assert str(change.kind) in kinds


# --- A change refused for a wrong code ------------------------------------------------------------------


def go_stale(clock, settings) -> None:
    clock.tick(settings.TWOFA_REAUTH_SECONDS + 31)


def wrong_code_to_switch_on(clock, settings) -> Change:
    user, _, client = ann(clock, with_totp=False)
    secret = generated_secret(client)
    return Change(user, None, run=lambda: verify(client, wrong_code(secret, clock)), stays=logged_in(client))


def wrong_code_to_replace(clock, settings) -> Change:
    user, secret, client = ann(clock)
    new = generated_secret(client)
    return Change(user, secret, run=lambda: verify(client, wrong_code(new, clock)), stays=logged_in(client))


def wrong_code_to_regenerate(clock, settings) -> Change:
    user, secret, client = ann(clock)
    return Change(
        user,
        secret,
        run=lambda: client.post(RECOVERY_CODES, {"token": wrong_code(secret, clock)}, format="json"),
        stays=logged_in(client),
    )


def wrong_token_to_disable(clock, settings) -> Change:
    user, secret, client = ann(clock)
    go_stale(clock, settings)
    return Change(
        user,
        secret,
        run=lambda: client.post(DISABLE, {"token": wrong_code(secret, clock)}, format="json"),
        stays=logged_in(client),
    )


def wrong_token_to_remove_a_passkey(clock, settings) -> Change:
    user, secret, client = ann(clock)
    passkey = passkey_of(client)
    go_stale(clock, settings)
    return Change(
        user,
        secret,
        run=lambda: client.delete(f"{PASSKEYS}/{passkey}", {"token": wrong_code(secret, clock)}, format="json"),
        stays=logged_in(client),
    )


def wrong_token_to_change_the_password(clock, settings) -> Change:
    user, secret, client = ann(clock)
    go_stale(clock, settings)
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    return Change(
        user,
        secret,
        run=lambda: client.post(PASSWORD_PATH, {**body, "token": wrong_code(secret, clock)}, format="json"),
        stays=logged_in(client),
    )


REFUSED = {
    "otp/verify switching 2FA on": wrong_code_to_switch_on,
    "otp/verify replacing the secret": wrong_code_to_replace,
    "otp/recovery-codes": wrong_code_to_regenerate,
    "otp/disable": wrong_token_to_disable,
    "passkeys/<id> DELETE": wrong_token_to_remove_a_passkey,
    "password": wrong_token_to_change_the_password,
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_change_refused_for_a_wrong_code_ends_nothing_and_the_code_counts(db, clock, settings, name):
    change = REFUSED[name](clock, settings)
    others = open_others(change, clock)
    before = factors(change.user)
    failures = UserModel.objects.get(pk=change.user.pk).failed_attempts

    response = change.run()

    assert response.status_code == 400
    assert response.json() == INVALID
    assert UserModel.objects.get(pk=change.user.pk).failed_attempts == failures + 1
    assert factors(change.user) == before
    assert others.states() == {"full": 200, "bob": 200} | ({"pending": 403} if others.pending else {})
    assert change.stays()


# --- An administrator's own account ----------------------------------------------------------------------


def test_an_administrator_who_sets_their_own_password_stays_and_their_other_sessions_end(db, clock):
    root = make_user("root@example.com", "Root", is_staff=True, is_superuser=True)
    admin, elsewhere = Client(), APIClient()
    admin.force_login(root)
    assert login(elsewhere, root.email).status_code == 200
    page = f"{ADMIN_USERS}{root.pk}/password/"
    form = admin_form(admin.get(page).content.decode())

    response = admin.post(page, {**form, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert response.status_code == 302
    assert is_logged_in(admin)  # under a new key (Django rotates it), its row kept
    assert elsewhere.get(ME).status_code == 401
    assert UserModel.objects.get(pk=root.pk).check_password(NEW_PASSWORD)


def test_an_administrator_who_resets_their_own_2fa_stays(db, clock, staff_with_2fa):
    admin = Client()
    admin.force_login(staff_with_2fa)
    elsewhere = full_login(staff_with_2fa.email, staff_with_2fa.otp_secret, clock)

    response = admin.post(ADMIN_USERS, {"action": "reset_two_factor", "_selected_action": [str(staff_with_2fa.pk)]})

    assert response.status_code == 302
    assert is_logged_in(admin)
    assert elsewhere.get(ME).status_code == 401
