"""A technician bound to a centre sees nothing of another centre's participants."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.pages import scan, wait_for_focus

pytestmark = pytest.mark.e2e


@pytest.fixture
def lim_aliquot(seed):
    """A PAR technician, and a LIM participant with a registered visit; returns a barcode."""
    with seed():
        factories.protocol()
        factories.sites()
        factories.user("technician", site="PAR", name="tech.par", password=PASSWORD)
        factories.participant("LIM", code="LIM-001")
        barcode = factories.visit("LIM-001").aliquots[0].barcode
    return barcode


def test_a_par_technician_gets_a_not_found_page_for_a_lim_participant(page, log_in, lim_aliquot):
    log_in("tech.par")

    response = page.goto("/participants/LIM-001")

    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    expect(page.locator(".error-page .flash-error")).to_have_text("No participant LIM-001.")


def test_a_par_technician_scanning_a_lim_aliquot_is_told_only_that_it_is_elsewhere(
    page, log_in, lim_aliquot
):
    log_in("tech.par")
    page.goto("/scan")

    wait_for_focus(page, "code")
    scan(page, lim_aliquot)

    expect(page.locator(".scan-state")).to_have_attribute("data-state", "aliquot.other_centre")
    expect(page.locator(".scan-message")).to_contain_text("registered at another centre")
    # Nothing of its participant, visit or place.
    expect(page.get_by_text("LIM-001")).to_have_count(0)
    expect(page.locator(".scan-state")).not_to_contain_text("Freezer")
