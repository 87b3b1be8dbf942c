"""Logging in and out through the real login form (with its CSRF token)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.pages import path

pytestmark = pytest.mark.e2e
USERNAME = "marie.technician"


@pytest.fixture
def user(seed):
    with seed():
        factories.protocol()
        factories.sites()
        factories.user("technician", site="LIM", name=USERNAME, password=PASSWORD)
    return USERNAME


def test_a_wrong_password_shows_the_error_and_stays_on_the_login_page(page, log_in, user):
    log_in(user, "not the right password")

    assert path(page) == "/login"
    expect(page.locator(".error-summary")).to_contain_text("Unknown user name or wrong password.")
    expect(page.locator(".topbar .who")).to_have_count(0)
    page.goto("/")
    assert path(page) == "/login"  # still not logged in


def test_the_right_password_lands_on_the_home_page_showing_the_user_name(page, log_in, user):
    log_in(user)

    assert path(page) == "/"
    expect(page.locator("h1")).to_have_text(f"Welcome, {USERNAME}")
    expect(page.locator(".topbar .who")).to_contain_text(USERNAME)


def test_logging_out_returns_to_the_login_page_and_ends_the_session(page, log_in, user):
    log_in(user)

    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()

    assert path(page) == "/login"
    expect(page.locator(".topbar .who")).to_have_count(0)
    page.goto("/scan")
    assert path(page) == "/login"
