"""The /demo/ page in Chromium, with a virtual passkey authenticator (Chrome DevTools Protocol:
`WebAuthn.addVirtualAuthenticator`, CTAP2, internal transport, resident keys, user verification).

The page walks the API as a person would: register, log in, add a passkey, log out, sign in with
it; log in with the password and complete with the passkey; remove it. The authenticator signs
for the origin Chromium sees, http://localhost:8000, whose host is the default RP ID. The test
keeps the README's screenshot of the page (docs/demo-passkeys.png).
"""

import pytest

from otp_app.middleware import DEMO
from tests.helpers import PASSWORD
from tests.support.browser import require_free_ports
from tests.support.http_client import fresh_email
from tests.support.server import ROOT, serving

pytestmark = pytest.mark.e2e

SCREENSHOT = ROOT / "docs" / "demo-passkeys.png"


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """The API with its demo page, where the page and passkeys expect it: http://localhost:8000."""
    require_free_ports(8000)
    env = {"ALLOWED_HOSTS": "localhost,127.0.0.1", "TWOFA_DEMO_PAGE": "true"}
    with serving(tmp_path_factory.mktemp("demo"), port=8000, env=env) as server:
        server.url = "http://localhost:8000"
        yield server


@pytest.fixture
def authenticator(page):
    """A platform authenticator with user verification, as a laptop's fingerprint reader."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    yield cdp, added["authenticatorId"]
    cdp.send("WebAuthn.disable")


def stored_credentials(authenticator) -> list[dict]:
    cdp, authenticator_id = authenticator
    return cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]


def open_demo(page, server, refusals: list) -> None:
    page.on("console", lambda message: refusals.append(message.text) if "Content Security" in message.text else None)
    page.goto(server.url + "/demo/")
    page.locator("#register").wait_for()


def status(page) -> str:
    return page.locator("#status").inner_text()


def register_and_log_in(page, email: str) -> None:
    page.fill("#register-email", email)
    page.fill("#register-name", "Demo")
    page.fill("#register-password", PASSWORD)
    page.click("#register")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('Registered')")
    log_in(page, email)
    page.locator("#logout").wait_for(state="visible")


def log_in(page, email: str) -> None:
    page.fill("#login-email", email)
    page.fill("#login-password", PASSWORD)
    page.click("#login")


def add_passkey(page, name: str) -> None:
    page.fill("#passkey-name", name)
    page.click("#passkey-add")
    page.locator("#passkeys li", has_text=name).wait_for()


def test_the_demo_page_has_its_policy_and_nothing_is_refused(page, demo_server):
    refusals = []
    response = page.goto(demo_server.url + "/demo/")

    assert response.status == 200
    assert response.headers["content-security-policy"] == DEMO
    page.locator("#register").wait_for()
    assert refusals == []


def test_add_a_passkey_log_out_and_sign_in_with_it(page, demo_server, authenticator):
    refusals, email = [], fresh_email("demo")
    open_demo(page, demo_server, refusals)
    register_and_log_in(page, email)

    add_passkey(page, "Laptop")

    assert page.locator("#recovery-codes li").count() == 10  # the first second factor
    assert page.locator("#passkey-count").inner_text().strip() == "1"
    assert len(stored_credentials(authenticator)) == 1
    assert stored_credentials(authenticator)[0]["isResidentCredential"] is True
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.click("#logout")
    page.locator("#passkey-sign-in").wait_for(state="visible")
    page.click("#passkey-sign-in")  # no email, no password: the passkey names the account

    page.locator("#logout").wait_for(state="visible")
    assert email in page.locator("body").inner_text()
    assert refusals == []


def test_log_in_with_the_password_then_complete_with_the_passkey(page, demo_server, authenticator):
    refusals, email = [], fresh_email("demo")
    open_demo(page, demo_server, refusals)
    register_and_log_in(page, email)
    add_passkey(page, "Laptop")
    page.click("#logout")
    page.locator("#login").wait_for(state="visible")

    log_in(page, email)
    page.locator("#passkey-second-factor").wait_for(state="visible")  # pending: a second factor
    page.click("#passkey-second-factor")

    page.locator("#logout").wait_for(state="visible")
    page.locator("#passkeys li", has_text="Laptop").wait_for()
    assert refusals == []


def test_remove_the_passkey_turns_2fa_off(page, demo_server, authenticator):
    refusals, email = [], fresh_email("demo")
    open_demo(page, demo_server, refusals)
    register_and_log_in(page, email)
    add_passkey(page, "Laptop")

    page.locator("#passkeys li", has_text="Laptop").locator(".remove").click()

    page.locator("#passkeys li", has_text="Laptop").wait_for(state="detached")
    assert page.locator("#passkey-count").inner_text().strip() == "0"
    page.click("#logout")
    page.locator("#login").wait_for(state="visible")
    log_in(page, email)  # no second factor left: the password alone gives a full session
    page.locator("#logout").wait_for(state="visible")
    assert refusals == []
