"""A visit measured again, in the browser: the run page lists it, Enter on the choice does
not accept the run, the confirm button does, and the participant page then shows the
superseded value struck through beside the reportable one."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from biobank.assays import pipeline, services
from biobank.assays.example import make_plate
from tests import factories
from tests.conftest import PASSWORD
from tests.distribution.conftest import stock

pytestmark = pytest.mark.e2e
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def repeat(seed):
    """LIM-001's baseline serum measured by an accepted plate (850 pg/mL); the plate that
    measures it again (870 pg/mL), to import."""
    with seed() as db:
        factories.protocol()
        factories.sites()
        factories.user("manager", name="e2e.manager", password=PASSWORD)
        factories.freezer({})
        barcode = stock(db, participants=("LIM-001",), visits=("BL",))[("LIM-001", "BL", "SER")][0]
        services.ensure_default_analytes()
        first = make_plate({barcode: 850.0})
        run = services.preview_plate(
            first.reader, "first.xlsx", first.plate_map, "VEGF",
            pipeline.Options(read=450, reference=540), actor=None,
        ).run  # fmt: skip
        first_run = services.accept_run(run.code, actor=None).code
    return barcode, first_run, make_plate({barcode: 870.0})


def test_enter_on_the_choice_does_not_accept_only_the_confirm_button_does(page, log_in, repeat):
    _barcode, first_run, plate = repeat
    log_in("e2e.manager")
    page.goto("/assays")
    page.set_input_files(
        "#reader_file", files=[{"name": "again.xlsx", "mimeType": XLSX, "buffer": plate.reader}]
    )
    page.set_input_files(
        "#plate_map", files=[{"name": "map.xlsx", "mimeType": XLSX, "buffer": plate.plate_map}]
    )
    page.get_by_role("button", name="Read and fit").click()
    expect(page.locator(".big-badge")).to_have_text("preview")
    listed = page.locator("table.remeasured tbody tr")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text("LIM-001 · BL")
    expect(listed).to_contain_text(first_run)

    choices = listed.locator("input[type=radio]")
    expect(choices).to_have_count(2)
    choices.nth(1).check()
    choices.nth(1).press("Enter")  # a gloved thumb on the keyboard's Enter
    expect(page.locator(".big-badge")).to_have_text("preview")
    expect(page.locator("table.remeasured input[type=radio]").nth(1)).to_be_checked()

    page.get_by_role("button", name="Confirm and accept the run").click()
    expect(page.locator(".big-badge")).to_have_text("accepted")
    second_run = page.url.rstrip("/").rsplit("/", 1)[-1]

    page.goto("/participants/LIM-001")
    rows = page.locator("table.participant-results tbody tr")
    expect(rows).to_have_count(2)
    superseded, kept = (page.locator(f"tr[data-reportable='{s}']") for s in ("no", "yes"))
    expect(superseded).to_contain_text(f"superseded by {second_run}")
    expect(superseded.locator("s")).to_be_visible()  # struck through, its run beside it
    expect(superseded).to_have_attribute("data-run", first_run)
    expect(kept).to_have_attribute("data-run", second_run)
