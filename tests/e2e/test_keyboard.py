"""The keyboard alone: a skip link past the header, and a registration in few Tab presses."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from biobank.extensions import db
from biobank.samples.models import Specimen
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.pages import focused_id, path, wait_for_focus

pytestmark = [pytest.mark.e2e, pytest.mark.markup]
PARTICIPANT = "LIM-001"
SUBMIT = "form.registration button[type=submit]"
# Visit focused; then per tube: its tick box, four times, its barcode, its folded
# conditions; then the button. Today's header alone took 13 stops, the whole form 83.
MOST_TAB_PRESSES = 15


@pytest.fixture
def technician(seed):
    with seed():
        factories.protocol()
        factories.sites()
        factories.user("technician", site="LIM", name="tech.lim", password=PASSWORD)
        factories.participant("LIM", code=PARTICIPANT)
    return "tech.lim"


def focused_matches(page, selector: str) -> bool:
    return page.evaluate(
        "s => !!document.activeElement && document.activeElement.matches(s)", selector
    )


def tab_to(page, selector: str, limit: int = 150) -> int:
    """Press Tab until the element matching ``selector`` has the focus; how many presses."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if focused_matches(page, selector):
            return presses
    raise AssertionError(f"{selector} never got the focus in {limit} Tab presses")


@pytest.mark.parametrize("where", ["/", "/participants"])
def test_the_first_tab_stop_skips_the_header_to_the_page(page, log_in, technician, where):
    log_in(technician)
    page.goto(where)
    skip = page.locator("a.skip-link")
    assert skip.bounding_box()["y"] + skip.bounding_box()["height"] <= 0  # out of sight

    page.keyboard.press("Tab")

    assert focused_matches(page, "a.skip-link"), f"the first Tab stop is #{focused_id(page)}"
    expect(skip).to_have_text("Skip to content")
    expect(skip).to_be_in_viewport()  # shown while focused
    page.keyboard.press("Enter")
    assert focused_matches(page, "main#content")
    page.keyboard.press("Tab")  # on from the page, not from the header
    assert page.evaluate("document.querySelector('main').contains(document.activeElement)")


def test_the_registration_opens_on_the_visit_and_takes_few_tab_presses(
    page, log_in, technician, live_app
):
    log_in(technician)
    page.goto(f"/participants/{PARTICIPANT}/register")
    wait_for_focus(page, "visit")

    # The three times a collected tube needs, typed for the first tube (the second one
    # takes them), then the button: every other field keeps its usual value.
    presses = 0
    for field, typed in [
        ("collected_at", "2026-01-05 08:30"),
        ("spun_at", "2026-01-05 09:10"),
        ("frozen_at", "2026-01-05 09:40"),
    ]:
        presses += tab_to(page, f"#tubes-0-{field}")
        page.keyboard.type(typed)
    presses += tab_to(page, SUBMIT)

    assert presses <= MOST_TAB_PRESSES
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert path(page) == f"/participants/{PARTICIPANT}/visits/BL"
    with live_app.app_context():
        drawn = db.session.execute(sa.select(Specimen.tube_type)).scalars().all()
    assert sorted(drawn) == ["EDTA", "SST"]


def test_a_refused_field_in_the_folded_conditions_is_shown_open(page, log_in, technician):
    log_in(technician)
    page.goto(f"/participants/{PARTICIPANT}/register")
    conditions = page.locator("fieldset.tube[data-tube=SST] details.conditions")
    expect(conditions).not_to_have_attribute("open", "")
    conditions.locator("summary").first.click()
    page.fill("#tubes-0-spin_minutes", "")
    page.fill("#tubes-0-collected_at", "2026-01-05 08:30")
    page.fill("#tubes-0-spun_at", "2026-01-05 09:10")
    page.fill("#tubes-0-frozen_at", "2026-01-05 09:40")
    with page.expect_navigation():
        page.locator(SUBMIT).click()

    assert path(page) == f"/participants/{PARTICIPANT}/register"
    expect(conditions).to_have_attribute("open", "")
    expect(page.locator("#tubes-0-spin_minutes")).to_be_visible()
