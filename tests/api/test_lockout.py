"""Consecutive wrong codes lock the account with a growing delay.

While locked, every attempt is refused with 429 and Retry-After without the code being looked
at. The count lives in the account's row, so every process of the service sees it.
"""

from datetime import timedelta

import pytest

from otp_app import crypto, services, totp
from otp_app.models import UserModel
from tests.helpers import INVALID, VALIDATE, VERIFY, code_for, guess_wrong, pending_login, validate, wrong_code


def assert_locked(response, retry_after: int | None = None) -> None:
    assert response.status_code == 429, response.content
    header = response["Retry-After"]
    assert header.isdigit(), header
    if retry_after is not None:
        assert int(header) == retry_after
    body = response.json()
    assert body["status"] == "fail"
    assert isinstance(body["message"], str) and body["message"]
    assert "otp_valid" not in body and "otp_verified" not in body


def test_defaults_are_five_attempts_thirty_seconds_one_hour(settings):
    assert settings.TWOFA_LOCKOUT_THRESHOLD == 5
    assert settings.TWOFA_LOCKOUT_BASE_SECONDS == 30
    assert settings.TWOFA_LOCKOUT_MAX_SECONDS == 3600


def test_threshold_wrong_codes_lock_the_next_attempt_with_429(pending_client, user_with_2fa, clock, settings):
    guess_wrong(pending_client, user_with_2fa, clock, settings.TWOFA_LOCKOUT_THRESHOLD)
    assert_locked(validate(pending_client, wrong_code(user_with_2fa.otp_secret, clock)), retry_after=30)


def test_fewer_wrong_codes_than_the_threshold_do_not_lock(pending_client, user_with_2fa, clock, settings):
    guess_wrong(pending_client, user_with_2fa, clock, settings.TWOFA_LOCKOUT_THRESHOLD - 1)
    response = validate(pending_client, code_for(user_with_2fa.otp_secret, clock))
    assert response.status_code == 200
    assert response.json() == {"otp_valid": True}


@pytest.mark.parametrize("threshold", [1, 3, 8])
def test_threshold_follows_the_setting(pending_client, user_with_2fa, clock, settings, threshold):
    settings.TWOFA_LOCKOUT_THRESHOLD = threshold
    guess_wrong(pending_client, user_with_2fa, clock, threshold)
    assert_locked(validate(pending_client, wrong_code(user_with_2fa.otp_secret, clock)), retry_after=30)


def test_while_locked_the_correct_code_is_refused_with_429(pending_client, user_with_2fa, clock):
    guess_wrong(pending_client, user_with_2fa, clock, 5)
    assert_locked(validate(pending_client, code_for(user_with_2fa.otp_secret, clock)))
    assert pending_client.get("/api/auth/me").status_code == 403  # still pending
    assert UserModel.objects.get(pk=user_with_2fa.pk).last_accepted_step is None


def test_while_locked_the_code_is_not_looked_at(pending_client, user_with_2fa, clock, monkeypatch):
    guess_wrong(pending_client, user_with_2fa, clock, 5)

    def must_not_be_called(**kwargs):
        raise AssertionError("the code was compared while the account is locked")

    monkeypatch.setattr(totp, "matching_step", must_not_be_called)
    assert_locked(validate(pending_client, code_for(user_with_2fa.otp_secret, clock)))
    assert_locked(validate(pending_client, "not even digits"))


@pytest.mark.parametrize("elapsed, retry_after", [(0, 30), (1, 29), (0.5, 30), (12, 18), (29, 1), (29.5, 1)])
def test_retry_after_is_the_remaining_lock_in_whole_seconds(pending_client, user_with_2fa, clock, elapsed, retry_after):
    guess_wrong(pending_client, user_with_2fa, clock, 5)
    clock.tick(elapsed)
    assert_locked(validate(pending_client, wrong_code(user_with_2fa.otp_secret, clock)), retry_after=retry_after)


def test_lock_end_is_stored_on_the_account(pending_client, user_with_2fa, clock):
    guess_wrong(pending_client, user_with_2fa, clock, 5)
    stored = UserModel.objects.get(pk=user_with_2fa.pk)
    assert stored.failed_attempts == 5
    assert stored.locked_until == services.as_datetime(clock.now) + timedelta(seconds=30)


def test_after_the_lock_the_correct_code_works_and_resets_the_count(pending_client, user_with_2fa, clock):
    guess_wrong(pending_client, user_with_2fa, clock, 5)
    clock.tick(30)
    response = validate(pending_client, code_for(user_with_2fa.otp_secret, clock))
    assert response.status_code == 200
    assert response.json() == {"otp_valid": True}
    stored = UserModel.objects.get(pk=user_with_2fa.pk)
    assert (stored.failed_attempts, stored.locked_until) == (0, None)


def test_after_the_lock_a_new_run_of_wrong_codes_starts_from_zero_after_a_success(
    full_2fa_client, user_with_2fa, clock
):
    guess_wrong(full_2fa_client, user_with_2fa, clock, 5)
    clock.tick(30)
    assert validate(full_2fa_client, code_for(user_with_2fa.otp_secret, clock)).status_code == 200
    guess_wrong(full_2fa_client, user_with_2fa, clock, 4)
    clock.tick(30)
    # Had the earlier failures stayed, this would be the 10th attempt: locked for a long time.
    assert validate(full_2fa_client, code_for(user_with_2fa.otp_secret, clock)).status_code == 200


def test_a_success_resets_the_counter(full_2fa_client, user_with_2fa, clock):
    clock.tick(30)
    guess_wrong(full_2fa_client, user_with_2fa, clock, 4)
    assert UserModel.objects.get(pk=user_with_2fa.pk).failed_attempts == 4
    assert validate(full_2fa_client, code_for(user_with_2fa.otp_secret, clock)).status_code == 200
    assert UserModel.objects.get(pk=user_with_2fa.pk).failed_attempts == 0
    guess_wrong(full_2fa_client, user_with_2fa, clock, 4)
    response = validate(full_2fa_client, code_for(user_with_2fa.otp_secret, clock, steps_ahead=1))
    assert response.status_code == 200


def test_a_wrong_code_after_the_lock_locks_again_for_twice_as_long(full_2fa_client, user_with_2fa, clock):
    guess_wrong(full_2fa_client, user_with_2fa, clock, 5)
    clock.tick(30)
    guess_wrong(full_2fa_client, user_with_2fa, clock, 1)  # counted: the lock is over
    assert_locked(validate(full_2fa_client, code_for(user_with_2fa.otp_secret, clock)), retry_after=60)


def test_the_delay_doubles_with_each_further_wrong_code_up_to_the_maximum(
    no_idle_limit, full_2fa_client, user_with_2fa, clock
):
    guess_wrong(full_2fa_client, user_with_2fa, clock, 5)
    seen = []
    for _ in range(9):
        response = validate(full_2fa_client, wrong_code(user_with_2fa.otp_secret, clock))
        assert_locked(response)
        delay = int(response["Retry-After"])
        seen.append(delay)
        clock.tick(delay - 1)
        assert_locked(validate(full_2fa_client, wrong_code(user_with_2fa.otp_secret, clock)), retry_after=1)
        clock.tick(1)
        guess_wrong(full_2fa_client, user_with_2fa, clock, 1)
    assert seen == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


@pytest.mark.parametrize(
    "failures, seconds",
    [
        (0, None),
        (1, None),
        (4, None),
        (5, 30),
        (6, 60),
        (7, 120),
        (8, 240),
        (11, 1920),
        (12, 3600),
        (13, 3600),
        (200, 3600),
    ],
)
def test_lock_seconds_by_number_of_consecutive_failures(failures, seconds):
    assert services.lock_seconds(failures) == seconds


@pytest.mark.parametrize(
    "failures, seconds",
    [(1, None), (2, 10), (3, 20), (4, 40), (5, 50), (6, 50), (30, 50)],
)
def test_lock_seconds_follow_the_settings(settings, failures, seconds):
    settings.TWOFA_LOCKOUT_THRESHOLD = 2
    settings.TWOFA_LOCKOUT_BASE_SECONDS = 10
    settings.TWOFA_LOCKOUT_MAX_SECONDS = 50
    assert services.lock_seconds(failures) == seconds


def test_the_maximum_caps_the_delay_on_the_wire(full_2fa_client, user_with_2fa, clock, settings):
    settings.TWOFA_LOCKOUT_THRESHOLD = 2
    settings.TWOFA_LOCKOUT_BASE_SECONDS = 10
    settings.TWOFA_LOCKOUT_MAX_SECONDS = 50
    guess_wrong(full_2fa_client, user_with_2fa, clock, 2)
    seen = []
    for _ in range(5):
        response = validate(full_2fa_client, wrong_code(user_with_2fa.otp_secret, clock))
        assert_locked(response)
        seen.append(int(response["Retry-After"]))
        clock.tick(seen[-1])
        guess_wrong(full_2fa_client, user_with_2fa, clock, 1)
    assert seen == [10, 20, 40, 50, 50]


def test_wrong_codes_on_verify_count_too(full_2fa_client, user_with_2fa, clock):
    pending = full_2fa_client.post("/api/auth/otp/generate", {}, format="json").json()["base32"]
    guess_wrong(full_2fa_client, user_with_2fa, clock, 5, path=VERIFY, secret=pending)
    assert_locked(full_2fa_client.post(VERIFY, {"token": code_for(pending, clock)}, format="json"), retry_after=30)
    # The lock is the account's: a login elsewhere cannot validate either.
    assert_locked(validate(pending_login(user_with_2fa.email), code_for(user_with_2fa.otp_secret, clock)))
    assert UserModel.objects.get(pk=user_with_2fa.pk).otp_secret == user_with_2fa.otp_secret


def test_wrong_codes_on_verify_and_validate_add_up(full_2fa_client, user_with_2fa, clock):
    guess_wrong(full_2fa_client, user_with_2fa, clock, 3, path=VERIFY)
    guess_wrong(full_2fa_client, user_with_2fa, clock, 2, path=VALIDATE)
    assert_locked(validate(full_2fa_client, code_for(user_with_2fa.otp_secret, clock, steps_ahead=1)))


def test_malformed_codes_count_as_wrong_codes(pending_client, user_with_2fa, clock):
    for _ in range(5):
        assert validate(pending_client, "abcdef").json() == INVALID
    assert_locked(validate(pending_client, code_for(user_with_2fa.otp_secret, clock)))


def test_wrong_codes_from_different_sessions_add_up(user_with_2fa, clock):
    first, second = pending_login(user_with_2fa.email), pending_login(user_with_2fa.email)
    guess_wrong(first, user_with_2fa, clock, 3)
    guess_wrong(second, user_with_2fa, clock, 2)
    assert_locked(
        validate(pending_login(user_with_2fa.email), code_for(user_with_2fa.otp_secret, clock)), retry_after=30
    )


def test_a_new_login_does_not_lift_the_lock(pending_client, user_with_2fa, clock):
    guess_wrong(pending_client, user_with_2fa, clock, 5)
    clock.tick(10)
    assert_locked(
        validate(pending_login(user_with_2fa.email), code_for(user_with_2fa.otp_secret, clock)), retry_after=20
    )


def test_the_count_is_kept_in_the_database(pending_client, user_with_2fa, clock):
    for attempt in range(1, 4):
        guess_wrong(pending_client, user_with_2fa, clock, 1)
        assert UserModel.objects.get(pk=user_with_2fa.pk).failed_attempts == attempt


def test_a_lock_written_by_another_process_is_honoured(pending_client, user_with_2fa, clock):
    locked_until = services.as_datetime(clock.now) + timedelta(seconds=100)
    UserModel.objects.filter(pk=user_with_2fa.pk).update(failed_attempts=9, locked_until=locked_until)
    assert_locked(validate(pending_client, code_for(user_with_2fa.otp_secret, clock)), retry_after=100)


def test_counting_does_not_trust_a_stale_copy_of_the_account(user_with_2fa, clock):
    # Each process holds its own copy of the row; the count must be incremented in the database.
    stale = UserModel.objects.get(pk=user_with_2fa.pk)
    for _ in range(5):
        with pytest.raises(services.CodeRejected):
            services.accept_code(user=stale, code=wrong_code(stale.otp_secret, clock), now=clock.now)
    assert UserModel.objects.get(pk=user_with_2fa.pk).failed_attempts == 5
    with pytest.raises(services.LockedOut) as locked:
        services.accept_code(user=stale, code=code_for(stale.otp_secret, clock), now=clock.now)
    assert locked.value.retry_after == 30


def test_the_lock_is_per_account(pending_client, user_with_2fa, other_user, clock):
    guess_wrong(pending_client, user_with_2fa, clock, 5)
    other_secret = totp.new_secret()
    UserModel.objects.filter(pk=other_user.pk).update(
        otp_enabled=True, otp_verified=True, otp_secret=crypto.encrypt(other_secret)
    )
    response = validate(pending_login(other_user.email), code_for(other_secret, clock))
    assert response.status_code == 200


def test_while_locked_a_recovery_code_is_refused_too_and_stays_unused(logged_in_client, user, clock):
    secret = logged_in_client.post("/api/auth/otp/generate", {}, format="json").json()["base32"]
    enabled = logged_in_client.post(VERIFY, {"token": code_for(secret, clock)}, format="json")
    recovery_code = enabled.json()["recovery_codes"][0]
    device = pending_login(user.email)
    guess_wrong(device, user, clock, 5, secret=secret)
    assert_locked(validate(device, recovery_code), retry_after=30)
    clock.tick(30)
    response = validate(device, recovery_code)
    assert response.status_code == 200
    assert response.json() == {"otp_valid": True}


def test_wrong_recovery_codes_count_as_wrong_codes(pending_client, user_with_2fa, clock):
    for _ in range(5):
        assert validate(pending_client, "aaaaa-aaaaa").json() == INVALID
    assert_locked(validate(pending_client, code_for(user_with_2fa.otp_secret, clock)))
