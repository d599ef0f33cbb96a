"""A real browser for the browser tests: Debian's headless Chromium, driven by Playwright.

Playwright cannot download its own browser here, so it launches /usr/bin/chromium. Without
it the browser tests are skipped, except in CI (`CI` set), where they must run. The fixtures
that use this are in tests/browser/conftest.py.
"""

import contextlib
import socket
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.support import prerequisites

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


def require_chromium() -> None:
    if not CHROMIUM.exists():
        prerequisites.missing(prerequisites.CHROMIUM, f"no Chromium at {CHROMIUM}")


@contextlib.contextmanager
def chromium():
    """Chromium, launched for the length of the block."""
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()
    finally:
        playwright.stop()


# Tells the test of every Content-Security-Policy violation of every document the page loads.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", event => window.reportCspViolation(
    `${event.effectiveDirective} refused ${event.blockedURI || "inline"} (${event.sourceFile}:${event.lineNumber})`
));
"""


@contextlib.contextmanager
def fresh_page(browser):
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
