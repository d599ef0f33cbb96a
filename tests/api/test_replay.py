"""RFC 6238 §5.2: a code accepted once for an account is refused at any later request."""

import pytest

from otp_app import services, totp
from otp_app.models import UserModel
from tests.helpers import INVALID, VERIFY, code_for, make_user, pending_login, plain, validate


@pytest.fixture
def enrolled(db):
    """A 2FA account for which no code was accepted yet."""
    return make_user("carol@example.com", "Carol", otp_enabled=True, otp_verified=True, otp_secret=totp.new_secret())


def test_code_accepted_by_verify_is_refused_by_a_later_validate(logged_in_client, user, clock):
    secret = logged_in_client.post("/api/auth/otp/generate", {}, format="json").json()["base32"]
    code = code_for(secret, clock)
    assert logged_in_client.post(VERIFY, {"token": code}, format="json").status_code == 200

    device = pending_login(user.email)
    response = validate(device, code)
    assert response.status_code == 400
    assert response.json() == INVALID
    assert device.get("/api/auth/me").status_code == 403


def test_code_accepted_by_verify_is_refused_by_verify_again(full_2fa_client, user_with_2fa, clock):
    clock.tick(30)
    code = code_for(user_with_2fa.otp_secret, clock)
    assert full_2fa_client.post(VERIFY, {"token": code}, format="json").status_code == 200
    response = full_2fa_client.post(VERIFY, {"token": code}, format="json")
    assert response.status_code == 400
    assert response.json() == INVALID


def test_code_accepted_by_validate_is_refused_in_another_session(enrolled, clock):
    code = code_for(enrolled.otp_secret, clock)
    first, second = pending_login(enrolled.email), pending_login(enrolled.email)
    assert validate(first, code).status_code == 200
    response = validate(second, code)
    assert response.status_code == 400
    assert response.json() == INVALID
    assert second.get("/api/auth/me").status_code == 403


def test_code_accepted_once_is_refused_again_in_the_same_session(enrolled, clock):
    client = pending_login(enrolled.email)
    code = code_for(enrolled.otp_secret, clock)
    assert validate(client, code).status_code == 200
    assert validate(client, code).json() == INVALID


def test_code_accepted_once_is_refused_again_later_within_the_window(enrolled, clock):
    code = code_for(enrolled.otp_secret, clock)
    assert validate(pending_login(enrolled.email), code).status_code == 200
    clock.tick(29)  # same step: still inside the window
    assert validate(pending_login(enrolled.email), code).status_code == 400
    clock.tick(30)  # the next step: the code is one step old, still inside the window
    assert totp.matching_step(secret=plain(enrolled.otp_secret), code=code, now=clock.now) is not None
    assert validate(pending_login(enrolled.email), code).status_code == 400


def test_code_of_an_earlier_step_than_the_last_accepted_is_refused(enrolled, clock):
    assert validate(pending_login(enrolled.email), code_for(enrolled.otp_secret, clock)).status_code == 200
    earlier = code_for(enrolled.otp_secret, clock, steps_ahead=-1)  # inside the drift window
    response = validate(pending_login(enrolled.email), earlier)
    assert response.status_code == 400
    assert response.json() == INVALID


def test_code_of_the_current_step_is_refused_after_a_future_step_was_accepted(enrolled, clock):
    assert (
        validate(pending_login(enrolled.email), code_for(enrolled.otp_secret, clock, steps_ahead=1)).status_code == 200
    )
    response = validate(pending_login(enrolled.email), code_for(enrolled.otp_secret, clock))
    assert response.status_code == 400


def test_code_of_the_next_step_is_accepted(enrolled, clock):
    assert validate(pending_login(enrolled.email), code_for(enrolled.otp_secret, clock)).status_code == 200
    response = validate(pending_login(enrolled.email), code_for(enrolled.otp_secret, clock, steps_ahead=1))
    assert response.status_code == 200
    assert response.json() == {"otp_valid": True}


def test_code_of_the_next_step_is_accepted_once_the_clock_reaches_it(enrolled, clock):
    assert validate(pending_login(enrolled.email), code_for(enrolled.otp_secret, clock)).status_code == 200
    clock.tick(30)
    assert validate(pending_login(enrolled.email), code_for(enrolled.otp_secret, clock)).status_code == 200


def test_last_accepted_step_is_stored(enrolled, clock):
    assert validate(pending_login(enrolled.email), code_for(enrolled.otp_secret, clock)).status_code == 200
    assert UserModel.objects.get(pk=enrolled.pk).last_accepted_step == clock.step()


def test_replayed_code_counts_as_a_wrong_code(enrolled, clock):
    code = code_for(enrolled.otp_secret, clock)
    assert validate(pending_login(enrolled.email), code).status_code == 200
    assert validate(pending_login(enrolled.email), code).status_code == 400
    assert UserModel.objects.get(pk=enrolled.pk).failed_attempts == 1


# --- the race: two requests that read the account before either writes ---------------------------


def test_two_racing_validations_of_one_code_give_one_success(enrolled, clock):
    # Both requests loaded the account before either wrote: a read-then-write check would let both in.
    first = UserModel.objects.get(pk=enrolled.pk)
    second = UserModel.objects.get(pk=enrolled.pk)
    code = code_for(enrolled.otp_secret, clock)
    services.accept_code(user=first, code=code, now=clock.now)
    with pytest.raises(services.CodeRejected):
        services.accept_code(user=second, code=code, now=clock.now)


def test_two_racing_verifications_of_one_code_give_one_success(user, clock):
    services.prepare_secret(user=user)
    first = UserModel.objects.get(pk=user.pk)
    second = UserModel.objects.get(pk=user.pk)
    code = code_for(first.pending_secret, clock)
    services.verify_enrolment(user=first, code=code, now=clock.now)
    with pytest.raises(services.CodeRejected):
        services.verify_enrolment(user=second, code=code, now=clock.now)


def test_racing_verify_and_validate_of_one_code_give_one_success(enrolled, clock):
    first = UserModel.objects.get(pk=enrolled.pk)
    second = UserModel.objects.get(pk=enrolled.pk)
    code = code_for(enrolled.otp_secret, clock)
    services.verify_enrolment(user=first, code=code, now=clock.now)
    with pytest.raises(services.CodeRejected):
        services.accept_code(user=second, code=code, now=clock.now)
