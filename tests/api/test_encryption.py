"""TOTP secrets at rest: encrypted with Fernet under TWOFA_ENCRYPTION_KEYS (the first encrypts,
all decrypt), re-encrypted by `manage.py rotate_otp_keys`; a database dump holds no secret and
no recovery code. Production refuses to start without a key; development derives one."""

import io
import json
import re
import subprocess

import pytest
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from otp_app import crypto, services, totp
from otp_app.models import Session, UserModel
from tests.helpers import (
    GENERATE,
    PASSWORD,
    PRODUCTION,
    VALIDATE,
    VERIFY,
    code_for,
    make_user,
    manage,
    pending_login,
    spellings,
)

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
BASE32_RUN = re.compile(r"[A-Z2-7]{16,}")


def text(value) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("latin-1")
    return str(value)


def raw_database_text() -> dict[str, list[str]]:
    """Every value of every row of every table, as stored, by table; sessions also decoded."""
    found = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            found[table] = [text(value) for row in cursor.fetchall() for value in row]
    found["decoded sessions"] = [json.dumps(session.get_decoded()) for session in Session.objects.all()]
    return found


def assert_nowhere_in_the_database(needles: set[str]) -> None:
    for table, values in raw_database_text().items():
        for value in values:
            for needle in needles:
                assert needle not in value, f"{needle!r} stored in {table}: {value[:200]!r}"


def stored(user) -> tuple[str, str]:
    return UserModel.objects.filter(pk=user.pk).values_list("otp_secret", "pending_secret").get()


def encrypted_with(key: str, token: str) -> bool:
    try:
        Fernet(key.encode()).decrypt(token.encode())
        return True
    except InvalidToken:
        return False


def validates(email: str, token: str) -> bool:
    return pending_login(email).post(VALIDATE, {"token": token}, format="json").status_code == 200


# --- What the database holds ------------------------------------------------------------------


def test_raw_database_rows_hold_no_secret_and_no_recovery_code_after_enrolment(logged_in_client, user, clock):
    generated = logged_in_client.post(GENERATE, {}, format="json").json()
    secret = generated["base32"]
    verified = logged_in_client.post(VERIFY, {"token": code_for(secret, clock)}, format="json").json()
    codes = verified["recovery_codes"]
    # A second enrolment leaves a pending secret beside the one in force.
    pending = logged_in_client.post(GENERATE, {}, format="json").json()["base32"]
    assert validates(user.email, codes[0])

    row = UserModel.objects.get(pk=user.pk)
    assert row.otp_secret and row.pending_secret  # both are stored, just not readable
    needles = {secret, secret.lower(), pending, pending.lower(), generated["otpauth_url"]}
    for code in codes:
        needles |= spellings(code)
    assert_nowhere_in_the_database(needles)


def test_the_user_table_holds_no_base32_run_at_all(logged_in_client, user, clock):
    secret = logged_in_client.post(GENERATE, {}, format="json").json()["base32"]
    logged_in_client.post(VERIFY, {"token": code_for(secret, clock)}, format="json")
    logged_in_client.post(GENERATE, {}, format="json")

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM otp_app_usermodel")
        columns = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
    assert "otp_secret" in columns and "pending_secret" in columns
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            if column != "password":  # a password hash's base64 may hold such a run by chance
                assert not BASE32_RUN.search(text(value)), (column, value)


def test_stored_secrets_are_fernet_tokens_of_the_configured_key(logged_in_client, user, clock, settings):
    secret = logged_in_client.post(GENERATE, {}, format="json").json()["base32"]
    assert (
        MultiFernet([Fernet(key.encode()) for key in settings.TWOFA_ENCRYPTION_KEYS])
        .decrypt(stored(user)[1].encode())
        .decode()
        == secret
    )
    logged_in_client.post(VERIFY, {"token": code_for(secret, clock)}, format="json")
    assert encrypted_with(settings.TWOFA_ENCRYPTION_KEYS[0], stored(user)[0])
    assert crypto.decrypt(stored(user)[0]) == secret


def test_one_secret_encrypts_differently_each_time(settings):
    secret = totp.new_secret()
    assert crypto.encrypt(secret) != crypto.encrypt(secret)


def test_a_tampered_secret_is_never_accepted(user_with_2fa, clock):
    token = stored(user_with_2fa)[0]
    tampered = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt(tampered)
    UserModel.objects.filter(pk=user_with_2fa.pk).update(otp_secret=tampered)

    response = pending_login(user_with_2fa.email).post(
        VALIDATE, {"token": totp.code_at(secret=crypto.decrypt(token), step=clock.step())}, format="json"
    )

    assert response.status_code not in (200, 500)
    assert response.json()["status"] == "fail"


# --- Several keys: the first encrypts, all decrypt ----------------------------------------------


def test_the_first_key_encrypts_and_every_key_decrypts(settings):
    settings.TWOFA_ENCRYPTION_KEYS = [OLD_KEY]
    secret = totp.new_secret()
    under_old = crypto.encrypt(secret)

    settings.TWOFA_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    under_new = crypto.encrypt(secret)

    assert encrypted_with(NEW_KEY, under_new) and not encrypted_with(OLD_KEY, under_new)
    assert crypto.decrypt(under_old) == crypto.decrypt(under_new) == secret


def test_a_secret_under_an_old_key_still_verifies_while_that_key_is_listed(db, clock, settings):
    settings.TWOFA_ENCRYPTION_KEYS = [OLD_KEY]
    secret = totp.new_secret()
    ann = make_user(otp_enabled=True, otp_verified=True, otp_secret=secret)

    settings.TWOFA_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    assert validates(ann.email, code_for(secret, clock))


def test_a_secret_under_a_removed_key_is_refused_with_a_clear_error(db, clock, settings):
    settings.TWOFA_ENCRYPTION_KEYS = [OLD_KEY]
    secret = totp.new_secret()
    ann = make_user(otp_enabled=True, otp_verified=True, otp_secret=secret)
    settings.TWOFA_ENCRYPTION_KEYS = [NEW_KEY]  # removed before rotate_otp_keys ran

    response = pending_login(ann.email).post(VALIDATE, {"token": code_for(secret, clock)}, format="json")

    assert response.status_code not in (200, 500)
    assert isinstance(response.json()["message"], str)


# --- rotate_otp_keys -----------------------------------------------------------------------------


def rotate(*args) -> str:
    out = io.StringIO()
    call_command("rotate_otp_keys", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def under_old_key(db, settings):
    """Five accounts with 2FA on (one also mid re-enrolment) whose secrets the old key encrypted;
    then the new key is put first. Returns {email: (secret in force, pending secret or None)}."""
    settings.TWOFA_ENCRYPTION_KEYS = [OLD_KEY]
    accounts = {}
    for number in range(5):
        secret = totp.new_secret()
        pending = totp.new_secret() if number == 2 else None
        email = f"user{number}@example.com"
        make_user(
            email,
            f"User {number}",
            otp_enabled=True,
            otp_verified=True,
            otp_secret=secret,
            **({"pending_secret": pending} if pending else {}),
        )
        accounts[email] = (secret, pending)
    make_user("no2fa@example.com", "No 2FA")  # nothing to rotate
    settings.TWOFA_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    return accounts


def all_tokens() -> list[str]:
    rows = UserModel.objects.values_list("otp_secret", "pending_secret")
    return [token for row in rows for token in row if token]


def test_rotation_re_encrypts_every_secret_with_the_first_key(under_old_key, clock, settings):
    assert all(encrypted_with(OLD_KEY, token) for token in all_tokens())

    rotate()

    tokens = all_tokens()
    assert len(tokens) == 6  # five secrets in force and one pending
    assert all(encrypted_with(NEW_KEY, token) and not encrypted_with(OLD_KEY, token) for token in tokens)
    for email, (secret, pending) in under_old_key.items():
        user = UserModel.objects.get(email=email)
        assert crypto.decrypt(user.otp_secret) == secret
        if pending:
            assert crypto.decrypt(user.pending_secret) == pending


def test_after_rotation_the_old_key_can_be_dropped_and_codes_still_verify(under_old_key, clock, settings):
    rotate()
    settings.TWOFA_ENCRYPTION_KEYS = [NEW_KEY]

    for email, (secret, _pending) in under_old_key.items():
        assert validates(email, code_for(secret, clock)), email
    # The pending re-enrolment can still be finished too.
    email, (secret, pending) = next((email, pair) for email, pair in under_old_key.items() if pair[1])
    user = UserModel.objects.get(email=email)
    clock.tick(30)
    services.verify_enrolment(user=user, code=code_for(pending, clock), now=clock.now)
    assert crypto.decrypt(UserModel.objects.get(email=email).otp_secret) == pending


def test_running_the_rotation_again_changes_nothing(under_old_key, settings):
    rotate()
    before = list(UserModel.objects.order_by("pk").values_list("pk", "otp_secret", "pending_secret"))

    rotate()

    assert list(UserModel.objects.order_by("pk").values_list("pk", "otp_secret", "pending_secret")) == before


def test_rotation_shows_a_progress_bar(under_old_key):
    output = rotate("--batch-size", "2")
    assert "100%" in output
    assert "5/5" in output


def test_an_interrupted_rotation_keeps_finished_batches_and_a_rerun_completes_it(
    under_old_key, clock, settings, monkeypatch
):
    real_reencrypt = crypto.reencrypt
    calls = []

    def interrupted_after_three(token):
        calls.append(token)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return real_reencrypt(token)

    monkeypatch.setattr(crypto, "reencrypt", interrupted_after_three)
    with pytest.raises(KeyboardInterrupt):
        rotate("--batch-size", "1")
    monkeypatch.setattr(crypto, "reencrypt", real_reencrypt)

    # Whatever was written is whole: every secret still decrypts to what it was.
    for email, (secret, _pending) in under_old_key.items():
        assert crypto.decrypt(UserModel.objects.get(email=email).otp_secret) == secret
    current = [token for token in all_tokens() if encrypted_with(NEW_KEY, token)]
    assert 0 < len(current) < 6  # finished batches were kept; the rest was not touched yet

    rotate("--batch-size", "1")

    assert all(encrypted_with(NEW_KEY, token) for token in all_tokens())
    settings.TWOFA_ENCRYPTION_KEYS = [NEW_KEY]
    for email, (secret, _pending) in under_old_key.items():
        assert validates(email, code_for(secret, clock)), email


def test_an_interruption_in_the_middle_of_a_batch_leaves_every_secret_readable(under_old_key, settings, monkeypatch):
    real_reencrypt = crypto.reencrypt
    calls = []

    def interrupted(token):
        calls.append(token)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_reencrypt(token)

    monkeypatch.setattr(crypto, "reencrypt", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rotate("--batch-size", "3")
    monkeypatch.setattr(crypto, "reencrypt", real_reencrypt)

    for email, (secret, pending) in under_old_key.items():
        user = UserModel.objects.get(email=email)
        assert crypto.decrypt(user.otp_secret) == secret
        if pending:
            assert crypto.decrypt(user.pending_secret) == pending
    rotate("--batch-size", "3")
    assert all(encrypted_with(NEW_KEY, token) for token in all_tokens())


def test_recovery_codes_made_under_the_old_key_work_while_it_is_listed(logged_in_client, user, clock, settings):
    settings.TWOFA_ENCRYPTION_KEYS = [OLD_KEY]
    secret = logged_in_client.post(GENERATE, {}, format="json").json()["base32"]
    codes = logged_in_client.post(VERIFY, {"token": code_for(secret, clock)}, format="json").json()["recovery_codes"]
    settings.TWOFA_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    rotate()

    assert validates(user.email, codes[0])


def test_regenerated_recovery_codes_work_once_the_old_key_is_dropped(logged_in_client, user, clock, settings):
    settings.TWOFA_ENCRYPTION_KEYS = [OLD_KEY]
    secret = logged_in_client.post(GENERATE, {}, format="json").json()["base32"]
    logged_in_client.post(VERIFY, {"token": code_for(secret, clock)}, format="json")
    settings.TWOFA_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    rotate()
    clock.tick(30)
    response = logged_in_client.post("/api/auth/otp/recovery-codes", {"token": code_for(secret, clock)}, format="json")
    codes = response.json()["recovery_codes"]
    settings.TWOFA_ENCRYPTION_KEYS = [NEW_KEY]

    assert validates(user.email, codes[0])


# --- Upgrading a database written by an earlier version (plain base32 secrets) -------------------


@pytest.mark.django_db(transaction=True)
def test_migrating_encrypts_the_secrets_that_earlier_versions_stored_in_plain_text(clock):
    app = "otp_app"
    before_encryption = (app, "0002_cache_table")
    executor = MigrationExecutor(connection)
    latest = [node for node in executor.loader.graph.leaf_nodes() if node[0] == app]
    secret, pending = totp.new_secret(), totp.new_secret()
    try:
        executor.migrate([before_encryption])
        old_user = executor.loader.project_state([before_encryption]).apps.get_model(app, "UserModel")
        old_user.objects.create(
            email="early@example.com",
            name="Early",
            password=make_password(PASSWORD),
            otp_enabled=True,
            otp_verified=True,
            otp_secret=secret,
            pending_secret=pending,
        )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)

    user = UserModel.objects.get(email="early@example.com")
    assert secret not in user.otp_secret and pending not in user.pending_secret
    assert crypto.decrypt(user.otp_secret) == secret
    assert validates(user.email, code_for(secret, clock))


# --- Where the keys come from ---------------------------------------------------------------------


WITHOUT_A_KEY = {key: value for key, value in PRODUCTION.items() if key != "TWOFA_ENCRYPTION_KEYS"}
PRINT_KEYS = "from django.conf import settings; print('keys=' + ','.join(settings.TWOFA_ENCRYPTION_KEYS))"


def printed_keys(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return next(line for line in result.stdout.splitlines() if line.startswith("keys="))[len("keys=") :]


def test_production_settings_refuse_to_start_without_an_encryption_key():
    result = manage("check", **WITHOUT_A_KEY)
    assert result.returncode != 0
    assert "TWOFA_ENCRYPTION_KEYS" in result.stderr


def test_production_settings_start_with_an_encryption_key():
    result = manage("check", **WITHOUT_A_KEY, TWOFA_ENCRYPTION_KEYS=NEW_KEY)
    assert result.returncode == 0, result.stdout + result.stderr


def test_several_keys_come_from_the_environment_in_order():
    result = manage("shell", "-c", PRINT_KEYS, TWOFA_ENCRYPTION_KEYS=f"{NEW_KEY},{OLD_KEY}")
    assert printed_keys(result) == f"{NEW_KEY},{OLD_KEY}"


def test_development_without_a_key_derives_one_from_the_secret_key():
    key, again, other = (
        printed_keys(manage("shell", "-c", PRINT_KEYS, DEBUG="true", SECRET_KEY=secret_key))
        for secret_key in ("first development key", "first development key", "second development key")
    )

    assert "," not in key
    Fernet(key.encode())  # a valid Fernet key
    assert key == again
    assert key != other
    assert "first development key" not in key
