"""Recovery codes: ten single-use codes for a lost phone.

otp/verify hands them out once, when it switches 2FA on; otp/validate takes one in `token` like
a TOTP code; they are stored only as keyed hashes, counted in USER.recovery_codes_left,
replaced by POST otp/recovery-codes and deleted when 2FA is switched off.
"""

import hashlib
import math
import random
from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from otp_app import services
from otp_app.models import RecoveryCode, UserModel
from tests.helpers import (
    DISABLE,
    GENERATE,
    INVALID,
    NOT_ENROLLED,
    PASSKEYS,
    RECOVERY_CODES,
    VALIDATE,
    VERIFY,
    add_passkey,
    canonical,
    code_for,
    enrol,
    generated_secret,
    login,
    make_user,
    pending_login,
    spellings,
    validate,
    wrong_code,
    wrong_recovery_code,
)
from tests.support.authenticator import SoftwareAuthenticator


@pytest.fixture
def enrolled(logged_in_client, user, clock):
    """`user` switched 2FA on through the API in `client` (a full session); `codes` are the ten."""
    secret, body = enrol(logged_in_client, clock)
    return SimpleNamespace(client=logged_in_client, user=user, secret=secret, body=body, codes=body["recovery_codes"])


def regenerate(client, token, **body):
    return client.post(RECOVERY_CODES, {"token": token, **body}, format="json")


def codes_left(user) -> int:
    return UserModel.objects.get(pk=user.pk).recovery_codes_left


# --- Issued once, when otp/verify switches 2FA on ----------------------------------------------


def test_verify_that_switches_2fa_on_returns_ten_distinct_recovery_codes(enrolled):
    assert enrolled.body["otp_verified"] is True
    assert enrolled.body["user"]["otp_enabled"] is True
    codes = enrolled.body["recovery_codes"]
    assert isinstance(codes, list) and len(codes) == 10
    assert all(isinstance(code, str) for code in codes)
    assert len({canonical(code) for code in codes}) == 10


def test_verify_reports_ten_codes_left_in_user(enrolled):
    assert enrolled.body["user"]["recovery_codes_left"] == 10
    assert codes_left(enrolled.user) == 10


def test_recovery_codes_are_short_and_made_of_letters_digits_and_dashes(enrolled):
    for code in enrolled.codes:
        symbols = code.replace("-", "")
        assert symbols.isascii() and symbols.isalnum(), code
        assert len(code) <= 16, code  # easy to type: no longer than "xxxxx-xxxxx" and a little


def test_each_recovery_code_carries_at_least_50_bits_of_randomness():
    # Estimate from many codes: the symbols seen at each position, and the code length.
    codes = [canonical(services.new_recovery_code()) for _ in range(3000)]
    length = {len(code) for code in codes}
    assert len(length) == 1, length
    alphabet = {symbol for code in codes for symbol in code}
    assert length.pop() * math.log2(len(alphabet)) >= 50
    for position in range(len(codes[0])):
        # Every position draws from the whole alphabet, not from a fixed or guessable subset.
        assert {code[position] for code in codes} == alphabet
    assert len(set(codes)) == len(codes)


def test_recovery_codes_do_not_come_from_the_seeded_random_module():
    random.seed(1234)
    first = [services.new_recovery_code() for _ in range(10)]
    random.seed(1234)
    second = [services.new_recovery_code() for _ in range(10)]
    assert first != second


# Symbols a person may read as one another, whatever the font.
LOOK_ALIKES = ["0Oo", "1Iil"]


def test_a_code_read_with_any_look_alike_symbol_is_typed_back_correctly():
    """An unambiguous alphabet: either a look-alike symbol is never shown, or every reading of
    it is accepted as that symbol."""
    for _ in range(500):
        code = services.new_recovery_code()
        for symbol in set(code):
            group = next((group for group in LOOK_ALIKES if symbol in group), None)
            for reading in group or "":
                typed = code.replace(symbol, reading)
                assert services.normalise_recovery_code(typed) == services.normalise_recovery_code(code), (
                    f"{code!r} shows {symbol!r}, which a person may type as {reading!r}"
                )


def test_codes_are_shown_only_once(enrolled, clock):
    shown = {canonical(code) for code in enrolled.codes}
    login_body = login(APIClient(), enrolled.user.email).content.decode()
    me_body = enrolled.client.get("/api/auth/me").content.decode()
    for body in (login_body, me_body):
        assert 'recovery_codes"' not in body
        assert not any(code in canonical(body) for code in shown)


def test_re_enrolment_while_2fa_is_on_issues_no_new_codes_and_keeps_the_old_ones(enrolled, clock):
    new_secret = enrolled.client.post(GENERATE, {}, format="json").json()["base32"]
    clock.tick(30)
    response = enrolled.client.post(VERIFY, {"token": code_for(new_secret, clock)}, format="json")

    assert response.status_code == 200
    assert "recovery_codes" not in response.json()
    assert response.json()["user"]["recovery_codes_left"] == 10
    assert validate(pending_login(enrolled.user.email), enrolled.codes[0]).status_code == 200


# --- Accepted by otp/validate like a TOTP code ------------------------------------------------


def test_a_recovery_code_completes_a_pending_login(enrolled):
    client = pending_login(enrolled.user.email)
    assert client.get("/api/auth/me").status_code == 403
    old_key = client.cookies["sessionid"].value

    response = validate(client, enrolled.codes[3])

    assert response.status_code == 200
    assert response.json() == {"otp_valid": True}
    assert client.cookies["sessionid"].value != old_key  # a new session key, as with a TOTP code
    me = client.get("/api/auth/me")
    assert me.status_code == 200
    assert me.json()["user"]["id"] == str(enrolled.user.pk)


def test_a_recovery_code_with_user_id_is_accepted(enrolled):
    client = pending_login(enrolled.user.email)
    response = client.post(VALIDATE, {"token": enrolled.codes[0], "user_id": str(enrolled.user.pk)}, format="json")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "typed",
    [
        lambda code: code,
        lambda code: code.upper(),
        lambda code: code.lower(),
        lambda code: code.replace("-", ""),
        lambda code: code.replace("-", " "),
        lambda code: f"  {code}  ",
        lambda code: " ".join(canonical(code)),
        lambda code: "-".join(canonical(code)[i : i + 2] for i in range(0, 10, 2)),
        lambda code: "".join(s.upper() if i % 2 else s.lower() for i, s in enumerate(code)),
    ],
    ids=["as-shown", "upper", "lower", "no-dash", "space", "padded", "spaced-out", "other-dashes", "mixed-case"],
)
def test_spaces_dashes_and_letter_case_are_forgiven(enrolled, typed):
    assert validate(pending_login(enrolled.user.email), typed(enrolled.codes[0])).status_code == 200


def test_a_recovery_code_is_accepted_once(enrolled):
    assert validate(pending_login(enrolled.user.email), enrolled.codes[0]).status_code == 200

    response = validate(pending_login(enrolled.user.email), enrolled.codes[0])

    assert response.status_code == 400
    assert response.json() == INVALID


def test_a_used_code_is_refused_in_every_spelling(enrolled):
    code = enrolled.codes[0]
    assert validate(pending_login(enrolled.user.email), code).status_code == 200
    for spelling in (code.upper(), code.replace("-", ""), code.replace("-", " ")):
        client = pending_login(enrolled.user.email)
        assert validate(client, spelling).json() == INVALID
        assert client.get("/api/auth/me").status_code == 403


def test_each_of_the_ten_codes_works_once_and_the_count_goes_down(enrolled):
    for used, code in enumerate(enrolled.codes, start=1):
        client = pending_login(enrolled.user.email)
        assert validate(client, code).status_code == 200
        assert client.get("/api/auth/me").json()["user"]["recovery_codes_left"] == 10 - used
    assert codes_left(enrolled.user) == 0
    assert validate(pending_login(enrolled.user.email), enrolled.codes[-1]).json() == INVALID


def test_login_reports_the_codes_left(enrolled):
    assert validate(pending_login(enrolled.user.email), enrolled.codes[0]).status_code == 200
    assert login(APIClient(), enrolled.user.email).json()["user"]["recovery_codes_left"] == 9


def test_using_a_recovery_code_leaves_the_totp_secret_working(enrolled, clock):
    assert validate(pending_login(enrolled.user.email), enrolled.codes[0]).status_code == 200
    clock.tick(30)
    assert validate(pending_login(enrolled.user.email), code_for(enrolled.secret, clock)).status_code == 200


def test_a_wrong_recovery_code_is_400_and_leaves_the_session_pending(enrolled):
    client = pending_login(enrolled.user.email)
    response = validate(client, wrong_recovery_code(enrolled.codes))
    assert response.status_code == 400
    assert response.json() == INVALID
    assert client.get("/api/auth/me").status_code == 403
    assert codes_left(enrolled.user) == 10


def test_one_accounts_code_does_not_open_another_account(enrolled, clock):
    other = make_user("bob@example.com", "Bob")
    other_client = APIClient()
    assert login(other_client, other.email).status_code == 200
    enrol(other_client, clock)

    client = pending_login(other.email)
    assert validate(client, enrolled.codes[0]).json() == INVALID
    assert client.get("/api/auth/me").status_code == 403
    # Nor was the first account's code used up by the attempt.
    assert validate(pending_login(enrolled.user.email), enrolled.codes[0]).status_code == 200


def test_a_recovery_code_at_validate_without_2fa_is_404(logged_in_client):
    assert validate(logged_in_client, "abcde-fghjk").json() == NOT_ENROLLED


def test_two_uses_of_one_code_by_stale_copies_of_the_account_give_one_success(enrolled, clock):
    # Two processes each hold the account as read at the start of their request.
    first = UserModel.objects.get(pk=enrolled.user.pk)
    second = UserModel.objects.get(pk=enrolled.user.pk)

    assert services.accept_code(user=first, code=enrolled.codes[0], now=clock.now) is services.Proof.RECOVERY_CODE
    with pytest.raises(services.CodeRejected):
        services.accept_code(user=second, code=enrolled.codes[0], now=clock.now)
    assert codes_left(enrolled.user) == 9


def test_totp_verified_after_the_last_passkey_went_issues_codes_though_read_before(logged_in_client, user, clock):
    # The verifying request read the account while a passkey was in force; the passkey goes (2FA
    # off, its codes deleted) before the verification writes: TOTP is now the first factor.
    passkey = add_passkey(logged_in_client, SoftwareAuthenticator()).json()["passkey"]["id"]
    secret = generated_secret(logged_in_client)
    as_read = UserModel.objects.get(pk=user.pk)
    assert logged_in_client.delete(f"{PASSKEYS}/{passkey}", {}, format="json").status_code == 200

    enrolment = services.verify_enrolment(user=as_read, code=code_for(secret, clock), now=clock.now)

    assert enrolment.user.two_factor_enabled and enrolment.switched_on
    assert len(enrolment.recovery_codes) == 10
    assert codes_left(user) == 10


def test_totp_verified_after_a_first_passkey_came_issues_no_second_set_though_read_before(
    logged_in_client, user, clock
):
    secret = generated_secret(logged_in_client)
    as_read = UserModel.objects.get(pk=user.pk)
    first_set = add_passkey(logged_in_client, SoftwareAuthenticator()).json()["recovery_codes"]

    enrolment = services.verify_enrolment(user=as_read, code=code_for(secret, clock), now=clock.now)

    assert enrolment.user.otp_enabled and enrolment.recovery_codes == []
    assert codes_left(user) == 10
    proof = services.accept_code(user=UserModel.objects.get(pk=user.pk), code=first_set[0], now=clock.now)
    assert proof is services.Proof.RECOVERY_CODE  # the set the passkey issued still holds


# --- Wrong recovery codes count towards the lockout ------------------------------------------


def test_wrong_recovery_codes_lock_the_account_like_wrong_totp_codes(enrolled, clock, settings):
    client = pending_login(enrolled.user.email)
    for _ in range(settings.TWOFA_LOCKOUT_THRESHOLD):
        assert validate(client, wrong_recovery_code(enrolled.codes)).json() == INVALID

    response = validate(client, code_for(enrolled.secret, clock, steps_ahead=1))

    assert response.status_code == 429
    assert response["Retry-After"].isdigit()


def test_wrong_recovery_codes_and_wrong_totp_codes_add_up(enrolled, clock, settings):
    client = pending_login(enrolled.user.email)
    assert settings.TWOFA_LOCKOUT_THRESHOLD == 5
    for token in [wrong_recovery_code(enrolled.codes)] * 3 + [wrong_code(enrolled.secret, clock)] * 2:
        assert validate(client, token).status_code == 400

    assert validate(client, enrolled.codes[0]).status_code == 429


def test_while_locked_a_right_recovery_code_is_refused_and_not_used_up(enrolled, clock, settings):
    client = pending_login(enrolled.user.email)
    for _ in range(settings.TWOFA_LOCKOUT_THRESHOLD):
        validate(client, wrong_code(enrolled.secret, clock))

    assert validate(client, enrolled.codes[0]).status_code == 429
    assert codes_left(enrolled.user) == 10

    clock.tick(settings.TWOFA_LOCKOUT_BASE_SECONDS)
    assert validate(client, enrolled.codes[0]).status_code == 200


def test_a_right_recovery_code_resets_the_count_of_wrong_codes(enrolled, clock):
    client = pending_login(enrolled.user.email)
    for _ in range(4):
        validate(client, wrong_recovery_code(enrolled.codes))
    assert validate(client, enrolled.codes[0]).status_code == 200
    assert UserModel.objects.get(pk=enrolled.user.pk).failed_attempts == 0


# --- Stored only as keyed hashes ----------------------------------------------------------------


def test_only_hashes_are_stored_never_the_codes(enrolled):
    rows = list(RecoveryCode.objects.filter(user=enrolled.user).values())
    assert len(rows) == 10
    stored = " ".join(str(value) for row in rows for value in row.values())
    for code in enrolled.codes:
        for spelling in spellings(code):
            assert spelling not in stored


def test_the_hashes_are_keyed_not_plain_digests_of_the_codes(enrolled):
    stored = set(RecoveryCode.objects.filter(user=enrolled.user).values_list("code_hash", flat=True))
    assert len(stored) == 10
    for code in enrolled.codes:
        for spelling in spellings(code):
            for algorithm in ("md5", "sha1", "sha256", "sha512", "sha3_256", "blake2b"):
                assert hashlib.new(algorithm, spelling.encode()).hexdigest() not in stored


# --- Regenerating: POST otp/recovery-codes with a current TOTP code --------------------------


def test_regenerating_with_a_current_code_returns_ten_new_codes(enrolled, clock):
    clock.tick(30)  # the code of the enrolment's step was used by otp/verify
    response = regenerate(enrolled.client, code_for(enrolled.secret, clock))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    assert len(body["recovery_codes"]) == 10
    assert len({canonical(code) for code in body["recovery_codes"]}) == 10
    assert not {canonical(code) for code in body["recovery_codes"]} & {canonical(code) for code in enrolled.codes}
    assert codes_left(enrolled.user) == 10


def test_regenerating_replaces_every_old_code(enrolled, clock):
    assert validate(pending_login(enrolled.user.email), enrolled.codes[0]).status_code == 200
    assert codes_left(enrolled.user) == 9
    clock.tick(30)
    new_codes = regenerate(enrolled.client, code_for(enrolled.secret, clock)).json()["recovery_codes"]

    assert codes_left(enrolled.user) == 10
    assert enrolled.client.get("/api/auth/me").json()["user"]["recovery_codes_left"] == 10
    for old in enrolled.codes[1:4]:
        assert validate(pending_login(enrolled.user.email), old).json() == INVALID
    assert validate(pending_login(enrolled.user.email), new_codes[0]).status_code == 200
    assert RecoveryCode.objects.filter(user=enrolled.user).count() == 10


def test_regenerating_accepts_user_id_of_the_own_account(enrolled, clock):
    clock.tick(30)
    response = regenerate(enrolled.client, code_for(enrolled.secret, clock), user_id=str(enrolled.user.pk))
    assert response.status_code == 200


def test_regenerating_with_another_accounts_user_id_is_403(enrolled, clock, other_user):
    clock.tick(30)
    response = regenerate(enrolled.client, code_for(enrolled.secret, clock), user_id=str(other_user.pk))
    assert response.status_code == 403
    assert validate(pending_login(enrolled.user.email), enrolled.codes[0]).status_code == 200


def assert_codes_unchanged(enrolled) -> None:
    assert codes_left(enrolled.user) == 10
    assert validate(pending_login(enrolled.user.email), enrolled.codes[0]).status_code == 200


def test_regenerating_with_a_wrong_code_is_400_and_keeps_the_codes(enrolled, clock):
    response = regenerate(enrolled.client, wrong_code(enrolled.secret, clock))
    assert response.status_code == 400
    assert response.json() == INVALID
    assert_codes_unchanged(enrolled)


def test_regenerating_with_a_replayed_code_is_refused(enrolled, clock):
    # The step's code was accepted by otp/verify at enrolment.
    response = regenerate(enrolled.client, code_for(enrolled.secret, clock))
    assert response.status_code == 400
    assert_codes_unchanged(enrolled)


def test_regenerating_needs_a_totp_code_not_a_recovery_code(enrolled):
    response = regenerate(enrolled.client, enrolled.codes[1])
    assert response.status_code == 400
    assert "recovery_codes" not in response.json()
    assert codes_left(enrolled.user) == 10
    assert validate(pending_login(enrolled.user.email), enrolled.codes[1]).status_code == 200


def test_regenerating_without_a_token_is_400(enrolled):
    response = enrolled.client.post(RECOVERY_CODES, {}, format="json")
    assert response.status_code == 400
    assert "token" in response.json()["errors"]
    assert_codes_unchanged(enrolled)


def test_regenerating_needs_a_full_session(enrolled, clock):
    client = pending_login(enrolled.user.email)
    clock.tick(30)
    response = regenerate(client, code_for(enrolled.secret, clock))
    assert response.status_code == 403
    assert_codes_unchanged(enrolled)


def test_regenerating_without_a_session_is_refused(enrolled, clock):
    clock.tick(30)
    response = regenerate(APIClient(), code_for(enrolled.secret, clock))
    assert response.status_code in (401, 403)
    assert_codes_unchanged(enrolled)


def test_regenerating_without_2fa_is_refused_and_creates_no_codes(logged_in_client, user):
    response = regenerate(logged_in_client, "123456")
    assert 400 <= response.status_code < 500
    assert "recovery_codes" not in response.json()
    assert RecoveryCode.objects.filter(user=user).count() == 0
    assert codes_left(user) == 0


def test_wrong_codes_at_regenerating_count_towards_the_lockout(enrolled, clock, settings):
    for _ in range(settings.TWOFA_LOCKOUT_THRESHOLD):
        assert regenerate(enrolled.client, wrong_code(enrolled.secret, clock)).status_code == 400
    response = regenerate(enrolled.client, code_for(enrolled.secret, clock, steps_ahead=1))
    assert response.status_code == 429
    assert "recovery_codes" not in response.json()


# --- Disabling 2FA deletes them -------------------------------------------------------------------


def test_disabling_2fa_deletes_the_codes(enrolled):
    response = enrolled.client.post(DISABLE, {}, format="json")

    assert response.status_code == 200
    assert response.json()["user"]["recovery_codes_left"] == 0
    assert RecoveryCode.objects.filter(user=enrolled.user).count() == 0
    assert codes_left(enrolled.user) == 0


def test_codes_from_before_a_disable_do_not_work_after_2fa_is_on_again(enrolled, clock):
    assert enrolled.client.post(DISABLE, {}, format="json").status_code == 200
    clock.tick(30)
    _, body = enrol(enrolled.client, clock)

    assert len(body["recovery_codes"]) == 10
    assert not {canonical(code) for code in body["recovery_codes"]} & {canonical(code) for code in enrolled.codes}
    assert validate(pending_login(enrolled.user.email), enrolled.codes[0]).json() == INVALID
    assert validate(pending_login(enrolled.user.email), body["recovery_codes"][0]).status_code == 200
