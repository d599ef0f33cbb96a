"""Fixtures of the browser tests: Chromium (its absence is found before any server starts), a fresh
page, and the API where the React app expects it."""

import pytest

from tests.support.browser import chromium, fresh_page, require_chromium, require_free_ports
from tests.support.server import serving


@pytest.fixture(scope="session", autouse=True)
def chromium_installed():
    require_chromium()


@pytest.fixture(scope="module")
def browser(chromium_installed):
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser):
    """A new page in a fresh browser profile; see tests/support/browser.py, fresh_page."""
    with fresh_page(browser) as page:
        yield page


@pytest.fixture(scope="module")
def api_on_localhost_8000(tmp_path_factory):
    """The API where the React app expects it, http://localhost:8000, with its default front-end
    origin http://localhost:3000 (gunicorn, production settings, its own database)."""
    require_free_ports(8000)
    env = {"ALLOWED_HOSTS": "localhost,127.0.0.1", "CORS_ALLOWED_ORIGINS": "http://localhost:3000"}
    with serving(tmp_path_factory.mktemp("api8000"), port=8000, env=env) as server:
        server.url = "http://localhost:8000"  # the name the browser and the React app use
        yield server
