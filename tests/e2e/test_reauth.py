"""The re-authentication rule over real HTTP, on a server where no proof is ever recent
(TWOFA_REAUTH_SECONDS=0), as for a session left unattended or a stolen cookie: the second factor
can be neither replaced nor removed without a current code of the secret in force."""

import pytest

from tests.helpers import wrong_code_now
from tests.support.http_client import Account
from tests.support.server import serving

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stale(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("stale"), env={"TWOFA_REAUTH_SECONDS": "0"}) as server:
        yield server.url


def test_a_stale_session_can_neither_replace_nor_remove_the_second_factor(stale):
    person = Account(stale)
    person.enrol()

    replacing = person.post("otp/generate")
    disabling = person.post("otp/disable")

    assert replacing.status_code == 403 and replacing.json()["message"].startswith("Confirm with a code")
    assert "base32" not in replacing.json()
    assert disabling.status_code == 403
    # The person's own authenticator still opens the account.
    later = person.pending_session()
    assert person.post("otp/validate", {"token": person.next_code()}, http=later).status_code == 200


def test_only_a_current_code_of_the_secret_in_force_starts_a_replacement(stale):
    person = Account(stale)
    person.enrol()
    assert person.post("otp/generate", {"token": wrong_code_now(person.secret)}).status_code == 400
    generated = person.post("otp/generate", {"token": person.next_code()})

    assert generated.status_code == 200, generated.text
    assert set(generated.json()) == {"base32", "otpauth_url", "qr_code"}
