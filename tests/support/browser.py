"""A real browser for end-to-end tests: Debian's headless Chromium, driven by Playwright.

Playwright cannot download its own browser here, so it launches /usr/bin/chromium. Without
it the browser tests are skipped, except in CI (`CI` set), where they must run. Test modules
import the fixtures they use, `chromium_installed` always:
`from tests.support.browser import browser, chromium_installed, page  # noqa: F401`.
"""
import socket
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.support import prerequisites
from tests.support.server import serving

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Pages may ask for remote assets (ReDoc's logo, say): nothing leaves the machine, every
    # host but the loopback ones fails to resolve at once.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]",
]
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 20_000


def port_in_use(port: int) -> bool:
    """Whether something listens on `port` of either loopback address (the browser may try both
    for `localhost`)."""
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family) as probe:
                probe.settimeout(0.5)
                if probe.connect_ex((host, port)) == 0:
                    return True
        except OSError:  # no IPv6 on this machine
            continue
    return False


def require_free_ports(*ports: int) -> None:
    busy = [port for port in ports if port_in_use(port)]
    if busy:
        prerequisites.missing(prerequisites.FREE_PORTS, f"port(s) {busy} in use: this test needs them free")


@pytest.fixture(scope="session", autouse=True)
def chromium_installed():
    """Autouse in every module that imports it, so a missing browser is found before any
    server starts."""
    if not CHROMIUM.exists():
        prerequisites.missing(prerequisites.CHROMIUM, f"no Chromium at {CHROMIUM}")


@pytest.fixture(scope="module")
def browser(chromium_installed):
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


# Tells the test of every Content-Security-Policy violation of every document the page loads.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", event => window.reportCspViolation(
    `${event.effectiveDirective} refused ${event.blockedURI || "inline"} (${event.sourceFile}:${event.lineNumber})`
));
"""


@pytest.fixture
def page(browser):
    """A new page in a fresh browser profile (no cookies). `page.errors` collects its uncaught
    script errors: a page that throws is broken even when it looks fine. `page.csp_violations`
    collects what its Content-Security-Policy refused, as events and as console messages."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    csp_violations = []
    context.expose_function("reportCspViolation", lambda violation: csp_violations.append(violation))
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.csp_violations = csp_violations
    page.on("console", lambda message: _record_csp_message(csp_violations, message.text))
    try:
        yield page
    finally:
        context.close()


def _record_csp_message(violations: list[str], text: str) -> None:
    if "Content Security Policy" in text:
        violations.append(text)


@pytest.fixture(scope="module")
def api_on_localhost_8000(tmp_path_factory):
    """The API where the React app expects it, http://localhost:8000, with its default front-end
    origin http://localhost:3000 (gunicorn, production settings, its own database)."""
    require_free_ports(8000)
    env = {"ALLOWED_HOSTS": "localhost,127.0.0.1", "CORS_ALLOWED_ORIGINS": "http://localhost:3000"}
    with serving(tmp_path_factory.mktemp("api8000"), port=8000, env=env) as server:
        server.url = "http://localhost:8000"  # the name the browser and the React app use
        yield server
