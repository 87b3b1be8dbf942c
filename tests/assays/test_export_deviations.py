"""The study export names what each result's sample deviates from: its tube's handling
outside the SOP, its aliquot thawed more often than the SOP allows, its visit outside
its window."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import openpyxl
import pytest

from biobank.assays import outcomes, pipeline, response, services
from biobank.assays.example import make_plate
from biobank.samples import services as samples
from biobank.storage import services as storage
from tests import factories

INCLUDED = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)  # the factories' inclusion day


def thaw(barcode: str, times: int) -> None:
    for _ in range(times):
        storage.check_out(barcode, "aliquoting", actor=None)
        storage.return_aliquot(barcode, 400, thawed=True, actor=None)


@pytest.fixture
def assayed(bank, db):
    """Baseline serum VEGF of LIM-001 (handled within the SOP), LIM-002 (thawed 3 times,
    one more than the SOP allows), LIM-003 (thawed twice: at the limit), LIM-004 (clotted
    3 h, then thawed 3 times), and the month-2 serum of LIM-005 (collected on study day
    64, after the window). Returns participant → the serum barcode measured."""
    factories.participant("LIM", code="LIM-004")
    late = samples.register_collection(
        "LIM-004",
        "BL",
        [factories.tube("SST", collected_at=INCLUDED, delay_hours=3)],
        actor=None,
    )
    factories.participant("LIM", code="LIM-005")
    out_of_window = factories.visit(
        "LIM-005", "M2", on=datetime(2026, 3, 10, 8, 30, tzinfo=UTC), tube_types=("SST",)
    )
    storage.create_container(
        "box", "Box 9", parent="SH-0001", barcode="BX-0009", type_name="81-place 2-inch cryobox",
        actor=None,
    )  # fmt: skip
    barcodes = {
        "LIM-001": bank[("LIM-001", "BL", "SER")][0],
        "LIM-002": bank[("LIM-002", "BL", "SER")][0],
        "LIM-003": bank[("LIM-003", "BL", "SER")][0],
        "LIM-004": late.aliquots[0].barcode,
        "LIM-005": out_of_window.aliquots[0].barcode,
    }
    storage.store_many([(barcodes[p], "BX-0009", None) for p in ("LIM-004", "LIM-005")], actor=None)
    thaw(barcodes["LIM-002"], 3)
    thaw(barcodes["LIM-003"], 2)
    thaw(barcodes["LIM-004"], 3)
    plate = make_plate(dict.fromkeys(barcodes.values(), 500.0))
    run = services.preview_plate(
        plate.reader, "vegf.xlsx", plate.plate_map, "VEGF",
        pipeline.Options(read=450, reference=540), actor=None,
    ).run  # fmt: skip
    services.accept_run(run.code, actor=None)
    db.session.commit()
    return barcodes


EXPECTED = {
    "LIM-001": "",
    "LIM-002": "freeze_thaw.exceeded",
    "LIM-003": "",
    "LIM-004": "preanalytical.draw_to_centrifugation;freeze_thaw.exceeded",
    "LIM-005": "visit.out_of_window",
}


def test_the_export_lists_each_results_deviation_codes(assayed):
    table = list(
        csv.DictReader(io.StringIO(outcomes.export_csv(response.load_criteria()).decode()))
    )
    vegf = {row["participant"]: row for row in table if row["analyte"] == "VEGF"}
    assert {p: row["aliquot"] for p, row in vegf.items()} == assayed
    assert {p: row["deviations"] for p, row in vegf.items()} == EXPECTED


def test_every_measurement_of_the_workbook_lists_them_too(assayed):
    book = openpyxl.load_workbook(
        io.BytesIO(
            outcomes.export_xlsx(
                response.load_criteria(), created=datetime(2026, 12, 1, tzinfo=UTC)
            )
        )
    )
    for title in ("Results", "All measurements"):
        rows = list(book[title].iter_rows(values_only=True))
        header = rows[0]
        found = {
            row[header.index("participant")]: row[header.index("deviations")] or ""
            for row in rows[1:]
            if row[header.index("analyte")] == "VEGF"
        }
        assert found == EXPECTED, title
