"""Small helpers shared by the browser tests."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError

FOCUS_TIMEOUT_MS = 2_000


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
