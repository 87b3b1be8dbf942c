"""Choosing the language from the header's select."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.support import Translations
from playwright.sync_api import expect

from tests import factories
from tests.conftest import PASSWORD

TRANSLATIONS = Path(__file__).resolve().parents[2] / "biobank" / "translations"
FRENCH_CATALOGUE = TRANSLATIONS / "fr" / "LC_MESSAGES" / "messages.mo"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xfail(
        not FRENCH_CATALOGUE.exists(),
        reason=f"the French catalogue is not compiled ({FRENCH_CATALOGUE} is missing): "
        "run `make translations` once biobank/translations/fr/LC_MESSAGES/messages.po exists",
        strict=True,
    ),
]


def french(message: str, **values) -> str:
    """``message`` as the French catalogue translates it; must differ from the English."""
    translated = Translations.load(str(TRANSLATIONS), ["fr"]).gettext(message) % values
    assert translated != message % values, f"the French catalogue does not translate {message!r}"
    return translated


@pytest.fixture
def user(seed):
    with seed():
        factories.protocol()
        factories.sites()
        factories.user("technician", site="LIM", name="jeanne", password=PASSWORD)
    return "jeanne"


def test_choosing_francais_in_the_header_shows_the_pages_in_french(page, user):
    page.goto("/login")
    expect(page.locator("h1")).to_have_text("Log in")

    with page.expect_navigation():
        page.select_option("#lang", "fr")

    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("h1")).to_have_text(french("Log in"))
    expect(page.locator("label[for=password]")).to_have_text(french("Password"))
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.locator("form button[type=submit].primary").click()
    expect(page.locator("h1")).to_have_text(french("Welcome, %(name)s", name=user))
    expect(page.locator("nav")).to_contain_text(french("Register a visit"))
    expect(page.locator("#lang")).to_have_value("fr")
