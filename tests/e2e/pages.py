"""Small helpers shared by the browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError

from tests.conftest import PASSWORD
from tests.e2e.conftest import TIMEOUT_MS

FOCUS_TIMEOUT_MS = 2_000


def log_in(page, username: str, password: str = PASSWORD) -> None:
    """Log in through the login form; lands on the page the login redirects to."""
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("form button[type=submit].primary")


@contextmanager
def signed_in(
    browser, live_server: str, username: str, *, viewport: dict, init_script: str = "", **options
) -> Iterator:
    """A page in a browser of its own (its own cookies), logged in as ``username``;
    ``options`` go to the browser context (has_touch, locale: en-GB by default)."""
    context = browser.new_context(
        base_url=live_server, viewport=viewport, **{"locale": "en-GB", **options}
    )
    context.set_default_timeout(TIMEOUT_MS)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    log_in(page, username)
    try:
        yield page
    finally:
        context.close()


def path(page) -> str:
    return urlsplit(page.url).path


def focused_id(page) -> str:
    return page.evaluate("document.activeElement ? document.activeElement.id : ''")


def wait_for_focus(page, element_id: str) -> None:
    """Wait until the element with ``element_id`` has the focus (autofocus is applied
    asynchronously, after the page has loaded); fail naming what has it instead."""
    try:
        page.wait_for_function(
            "id => document.activeElement && document.activeElement.id === id",
            arg=element_id,
            timeout=FOCUS_TIMEOUT_MS,
        )
    except PlaywrightError:
        raise AssertionError(
            f"#{element_id} is not focused on {page.url}; the focus is on "
            f"#{focused_id(page) or '(none)'}"
        ) from None


def scan(page, typed: str) -> None:
    """Type ``typed`` and Enter into whatever has the focus, as a keyboard-wedge scanner
    does, and wait for the page that answers."""
    page.keyboard.type(typed)
    with page.expect_navigation():
        page.keyboard.press("Enter")
