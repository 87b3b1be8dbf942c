"""Languages marked for screen readers, and dates typed the way the page's language writes
them, on a French page in a French browser."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from flask_babel import force_locale
from playwright.sync_api import expect

from biobank import dates
from biobank.extensions import db
from biobank.samples.models import Specimen
from biobank.study import services as study
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.conftest import TABLET, TIMEOUT_MS
from tests.e2e.pages import path

pytestmark = [pytest.mark.e2e, pytest.mark.markup]
PARTICIPANT = "LIM-001"


@pytest.fixture
def technician(seed):
    with seed():
        factories.protocol()
        factories.sites()
        factories.user("technician", site="LIM", name="jeanne", password=PASSWORD)
        factories.participant("LIM", code=PARTICIPANT, included_on=date(2026, 12, 3))
    return "jeanne"


@pytest.fixture
def french(browser, live_server, technician):
    """A French browser (its date inputs would read mm/dd/yyyy, AM/PM), signed in, the
    pages in French."""
    context = browser.new_context(
        base_url=live_server, viewport=TABLET, locale="fr-FR", timezone_id="Europe/Paris"
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/login")
    if page.locator("#lang").input_value() != "fr":
        with page.expect_navigation():
            page.select_option("#lang", "fr")
    page.fill("#username", technician)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.locator("form button[type=submit].primary").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    yield page
    context.close()


def test_each_language_of_the_menu_is_named_in_its_own_language(page, live_server):
    page.goto("/login")
    options = page.locator("#lang option")
    expect(options).to_have_count(2)
    assert options.evaluate_all("os => os.map(o => [o.value, o.lang, o.textContent.trim()])") == [
        ["en", "en", "English"],
        ["fr", "fr", "Français"],
    ]


def test_the_protocols_english_words_are_marked_english_on_a_french_page(french, live_app):
    with live_app.app_context():
        protocol = study.current_protocol()
        title = protocol.title
        arms = [(arm.name, arm.description) for arm in protocol.arms if arm.description]
        visits = [d.name for d in protocol.visit_definitions]

    french.goto("/protocol")
    expect(french.locator("h1 [lang=en]")).to_have_text(title)
    marked = french.locator("main [lang=en]").all_inner_texts()
    for name, description in arms:
        assert name in marked and description in marked
    for name in visits:
        assert name in marked
    # The catalogue's words are French: the table's headings carry no other language.
    expect(french.locator("main thead [lang]")).to_have_count(0)

    french.goto(f"/participants/{PARTICIPANT}/register")
    expect(french.locator("#visit option[value=BL]")).to_have_attribute("lang", "en")
    expect(french.locator("fieldset.tube[data-tube=SST] legend [lang=en]")).to_have_count(1)


def test_the_protocols_words_are_not_marked_on_an_english_page(page, log_in, technician):
    log_in(technician)
    page.goto("/protocol")
    expect(page.locator("main [lang]")).to_have_count(0)


def test_a_french_technician_types_the_collection_time_day_first(french, live_app):
    french.goto(f"/participants/{PARTICIPANT}/register")
    collected = french.locator("#tubes-0-collected_at")
    with live_app.test_request_context(), force_locale("fr"):
        day_first = dates.hint()  # "jj/mm/aaaa hh:mm" once the catalogue has it
    expect(french.locator("#tubes-0-collected_at ~ .hint")).to_contain_text(day_first)
    assert collected.get_attribute("type") == "text"  # not the browser's mm/dd/yyyy picker

    for field, typed in [
        ("collected_at", "03/12/2026 09:15"),
        ("spun_at", "03/12/2026 09:50"),
        ("frozen_at", "03/12/2026 10:20"),
    ]:
        french.locator(f"#tubes-0-{field}").click()
        french.keyboard.type(typed)
    expect(french.locator("#tubes-1-collected_at")).to_have_value("03/12/2026 09:15")
    with french.expect_navigation():
        french.locator("form.registration button[type=submit]").click()

    assert path(french) == f"/participants/{PARTICIPANT}/visits/BL"
    with live_app.app_context():
        drawn = dict(db.session.execute(sa.select(Specimen.tube_type, Specimen.collected_at)).all())
    # 09:15 in Limoges (UTC+1 in December) on the 3rd of December, not on the 12th of March.
    at = datetime(2026, 12, 3, 8, 15, tzinfo=UTC)
    assert drawn == {"SST": at, "EDTA": at}


def test_a_french_time_typed_wrong_is_refused_naming_its_field(french):
    french.goto(f"/participants/{PARTICIPANT}/register")
    french.fill("#tubes-0-collected_at", "12/31/2026 9:15 AM")
    french.fill("#tubes-0-spun_at", "03/12/2026 09:50")
    french.fill("#tubes-0-frozen_at", "03/12/2026 10:20")
    with french.expect_navigation():
        french.locator("form.registration button[type=submit]").click()

    assert path(french) == f"/participants/{PARTICIPANT}/register"
    field = french.locator(".field").filter(has=french.locator("#tubes-0-collected_at"))
    label = field.locator("label").inner_text()
    expect(field.locator(".field-error")).to_have_count(1)  # not "required" as well
    expect(field.locator(".field-error")).to_contain_text(label)
    expect(french.locator("#tubes-0-collected_at")).to_have_value("12/31/2026 9:15 AM")
