"""A coordinator checks collection completeness in the browser: filters, tooltips, the
chart and the spreadsheet."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import openpyxl
import pytest
from playwright.sync_api import expect

from biobank.samples import services as samples
from biobank.samples.services import NotCollected
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.pages import path

pytestmark = pytest.mark.e2e


@pytest.fixture
def trial(seed):
    """A central manager; LIM-001 (G2) with its baseline and a Month 2 plasma tube not
    drawn; LIM-002 (G1) and PAR-001 (G2) with nothing."""
    with seed():
        factories.protocol()
        factories.sites()
        factories.user("manager", name="coordinator", password=PASSWORD)
        factories.participant("LIM", "G2", code="LIM-001")
        factories.visit("LIM-001", "BL")
        samples.register_collection(
            "LIM-001",
            "M2",
            [factories.tube("SST", collected_at=datetime(2026, 3, 2, 8, 30, tzinfo=UTC))],
            actor=None,
            not_collected=[NotCollected("EDTA", "broken", "=1+1 dropped")],
        )
        factories.participant("LIM", "G1", code="LIM-002")
        factories.participant("PAR", "G2", code="PAR-001")


def test_a_coordinator_filters_reads_a_tooltip_and_downloads_the_spreadsheet(
    page, log_in, trial, screenshot, tmp_path
):
    log_in("coordinator")
    page.locator("nav").get_by_role("link", name="Completeness").click()
    page.wait_for_url("**/study/completeness")

    page.select_option("select[name=site]", "LIM")
    page.select_option("select[name=arm]", "G2")
    page.fill("input[name=as_of]", "2026-03-10")
    with page.expect_navigation():
        page.get_by_role("button", name="Filter").click()

    assert path(page) == "/study/completeness"
    query = parse_qs(urlsplit(page.url).query)
    assert (query["site"], query["arm"], query["as_of"]) == (["LIM"], ["G2"], ["2026-03-10"])
    rows = page.locator("table.completeness-grid tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("th a")).to_have_text("LIM-001")
    expect(page.locator("[data-participant=PAR-001]")).to_have_count(0)

    not_drawn = page.locator("td[data-visit=M2][data-tube=EDTA]")
    not_drawn.hover()
    expect(not_drawn).to_have_attribute("data-status", "not_collected")
    tooltip = not_drawn.get_attribute("title")
    assert tooltip.splitlines()[0] == "M2 · EDTA · not collected"
    assert "not drawn: tube broken" in tooltip and "=1+1 dropped" in tooltip
    expect(not_drawn.locator(".visually-hidden")).to_have_text("M2 EDTA: not collected")
    chart = page.locator(".completeness-chart img")
    expect(chart).to_be_visible()
    assert page.evaluate("img => img.naturalWidth", chart.element_handle()) > 0
    screenshot("completeness")

    with page.expect_download() as download:
        page.locator("#completeness-download").click()
    assert download.value.suggested_filename == "completeness-2026-03-10.xlsx"
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    sheet = openpyxl.load_workbook(saved).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 1 + 6 * 2  # LIM-001's six visits, two tubes each
    assert {row[0] for row in rows[1:]} == {"LIM-001"}
    assert "'=1+1 dropped" in [row[10] for row in rows]
