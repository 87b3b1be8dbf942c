"""Browser fixtures: a live server on the per-test database, a headless Chromium, pages.

The application runs in a thread of the test process, on the same per-test database as
tests/conftest.py's ``app`` fixture (a copy of the migrated SQLite file, or the
PostgreSQL database emptied after the test), with CSRF protection on: the browser goes
through the real forms. Data is set up with tests/factories.py inside ``seed()``.

Chromium is Debian's /usr/bin/chromium, never a browser downloaded by Playwright. Without
it the tests are skipped, except in CI (CI=true), where a missing browser is a failure.
Set BIOBANK_E2E_SCREENSHOTS to a folder to keep the screenshots the tests take.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from biobank import create_app
from biobank.extensions import db
from tests.conftest import IN_CI, PASSWORD, _empty_postgresql, _is_sqlite

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
TABLET = {"width": 1024, "height": 768}
TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def playwright():
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright):
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def live_app(database_url):
    """The application with real CSRF protection, on this test's database."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "WTF_CSRF_ENABLED": True,
            "SECRET_KEY": "e2e-secret",
            "SERVER_NAME": None,
        }
    )
    yield app
    with app.app_context():
        db.session.remove()
        if not _is_sqlite(database_url):
            _empty_postgresql()
        db.engine.dispose()


@pytest.fixture
def live_server(live_app) -> Iterator[str]:
    """Serve ``live_app`` on a free port of 127.0.0.1; yields the base URL."""
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def seed(live_app):
    """``with seed(): ...`` runs factories in the live app's context and commits them."""

    @contextmanager
    def seeding():
        with live_app.app_context():
            yield db
            db.session.commit()

    return seeding


@pytest.fixture
def context(browser, live_server):
    context = browser.new_context(
        base_url=live_server, viewport=TABLET, locale="en-GB", timezone_id="Europe/Paris"
    )
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def api(playwright, live_server):
    """A cookie-less HTTP client for the JSON API (bearer tokens only)."""
    request = playwright.request.new_context(base_url=live_server)
    yield request
    request.dispose()


@pytest.fixture
def screenshot(page, tmp_path):
    """``screenshot("name")`` saves the full page in $BIOBANK_E2E_SCREENSHOTS or tmp_path."""
    folder = Path(os.environ.get("BIOBANK_E2E_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def log_in(page):
    """Log in through the login form; lands on the page the login redirects to."""

    from tests.e2e.pages import log_in as log_in_through_the_form

    def login(username: str, password: str = PASSWORD):
        log_in_through_the_form(page, username, password)

    return login
