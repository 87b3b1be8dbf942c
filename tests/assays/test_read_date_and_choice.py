"""The day a plate was read comes from the reader file, else is asked for; a file with
several reads and no choice asks which one, through the API and the import page."""

from __future__ import annotations

import io
from datetime import timedelta

import openpyxl

from biobank.assays import platereader
from biobank.assays.example import make_plate
from biobank.db import utcnow
from tests.answers import ok
from tests.assays.conftest import upload_plate
from tests.pages import refused


def dated(reader: bytes, text: str | None) -> bytes:
    """The example reader file with its "Date" metadata cell (B4) rewritten or removed."""
    book = openpyxl.load_workbook(io.BytesIO(reader))
    sheet = book["Results"]
    if text is None:
        sheet["A4"] = sheet["B4"] = None
    else:
        sheet["B4"] = text
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def form(reader: bytes, plate, **fields) -> dict:
    return {
        "reader_file": (io.BytesIO(reader), "reader.xlsx"),
        "plate_map": (io.BytesIO(plate.plate_map), "map.xlsx"),
        "analyte": "VEGF",
        **fields,
    }


def several_reads(plate) -> bytes:
    """A laboratory list with three value columns, none named by a wavelength: the raw
    450 nm read, the corrected one, and a column of ones."""
    od450, od540 = platereader.read_reader_file(plate.reader, "plate.xlsx")
    rows = ["Well;Sample;Raw;Corrected;Conc"]
    for well, content in sorted(plate.layout.items()):
        raw, reference = od450.wells[well].value, od540.wells[well].value
        rows.append(f"{well};{content};{raw:.4f};{raw - reference:.4f};1".replace(".", ","))
    return ("\n".join(rows) + "\n").encode()


def test_the_run_and_its_results_carry_the_day_the_file_says_the_plate_was_read(
    serum, technician, manager
):
    plate = make_plate({serum[("LIM-001", "BL")]: 300.0})

    kept = ok(technician.post("/api/v1/assay-runs/plates", data=form(plate.reader, plate)), 201)
    ok(manager.post(f"/api/v1/assay-runs/{kept['run']}/accept"), 200)
    results = ok(technician.get(f"/api/v1/aliquots/{serum[('LIM-001', 'BL')]}/results"), 200)

    assert kept["measured_on"] == "2026-11-29"
    assert [r["measured_on"] for r in results["items"]] == ["2026-11-29"]


def test_a_date_given_that_differs_from_the_file_is_kept_and_the_difference_shown(
    serum, technician
):
    plate = make_plate({serum[("LIM-001", "BL")]: 300.0})

    kept = ok(
        technician.post(
            "/api/v1/assay-runs/plates",
            data=form(plate.reader, plate, measured_on="2026-11-30", dry_run="true"),
        ),
        201,
    )

    assert kept["measured_on"] == "2026-11-30"
    assert any("read on 2026-11-29" in p and "2026-11-30" in p for p in kept["problems"])


def test_an_ambiguous_file_date_is_asked_for_and_nothing_is_kept(serum, technician):
    plate = make_plate({serum[("LIM-001", "BL")]: 300.0})
    reader = dated(plate.reader, "03/04/2026")

    refusal = ok(technician.post("/api/v1/assay-runs/plates", data=form(reader, plate)), 400)[
        "error"
    ]
    nothing = ok(technician.get("/api/v1/assay-runs"), 200)
    given = ok(
        technician.post(
            "/api/v1/assay-runs/plates", data=form(reader, plate, measured_on="2026-04-03")
        ),
        201,
    )

    assert refusal["code"] == "run.measured_on"
    assert "03/04/2026" in refusal["message"] and "cell B4" in refusal["message"]
    assert "2026-04-03" in refusal["message"] and "2026-03-04" in refusal["message"]
    assert nothing["total"] == 0
    assert given["measured_on"] == "2026-04-03"


def test_a_file_without_a_date_is_imported_and_says_the_date_is_missing(serum, technician):
    plate = make_plate({serum[("LIM-001", "BL")]: 300.0})

    kept = ok(
        technician.post(
            "/api/v1/assay-runs/plates", data=form(dated(plate.reader, None), plate, dry_run="1")
        ),
        201,
    )

    assert kept["measured_on"] is None
    assert any("does not say when the plate was read" in p for p in kept["problems"])


def test_a_read_date_in_the_future_is_refused(serum, technician):
    plate = make_plate({serum[("LIM-001", "BL")]: 300.0})
    tomorrow = (utcnow() + timedelta(days=2)).date().isoformat()

    refusal = ok(
        technician.post(
            "/api/v1/assay-runs/plates", data=form(plate.reader, plate, measured_on=tomorrow)
        ),
        400,
    )["error"]

    assert refusal["code"] == "run.measured_on" and "future" in refusal["message"]


def test_the_api_lists_the_reads_to_choose_from(serum, technician):
    plate = make_plate({serum[("LIM-001", "BL")]: 300.0})
    data = form(several_reads(plate), plate)
    data["reader_file"] = (io.BytesIO(several_reads(plate)), "lis.csv")

    refusal = ok(technician.post("/api/v1/assay-runs/plates", data=data), 400)["error"]

    assert refusal["code"] == "run.choose_read"
    assert [r["label"] for r in refusal["fields"]["reads"]] == ["Raw", "Corrected", "Conc"]
    assert ok(technician.get("/api/v1/assay-runs"), 200)["total"] == 0


def test_the_import_page_offers_the_reads_of_the_file_then_imports_the_one_chosen(serum, login_as):
    technician = login_as("technician")
    plate = make_plate({serum[("LIM-001", "BL")]: 300.0})
    listed = several_reads(plate)
    upload = {"reader_file": (io.BytesIO(listed), "lis.csv"), "read": "", "reference": ""}

    page = refused(technician, upload_plate(technician, plate, **upload))

    assert 'select id="read" name="read"' in page
    for number, label in ((1, "Raw"), (2, "Corrected"), (3, "Conc")):
        assert f'<option value="{number}"' in page and f"{number} — {label}" in page
    upload = {"reader_file": (io.BytesIO(listed), "lis.csv"), "read": "2", "reference": ""}
    chosen = upload_plate(technician, plate, **upload)
    assert chosen.status_code == 303 and "/assays/runs/" in chosen.location


def test_the_import_page_asks_for_the_date_when_the_file_cannot_tell(serum, login_as):
    technician = login_as("technician")
    plate = make_plate({serum[("LIM-001", "BL")]: 300.0})
    reader = dated(plate.reader, "03/04/2026")

    page = refused(
        technician,
        upload_plate(technician, plate, reader_file=(io.BytesIO(reader), "plate.xlsx")),
    )
    given = upload_plate(
        technician,
        plate,
        reader_file=(io.BytesIO(reader), "plate.xlsx"),
        measured_on="2026-03-04",
    )

    assert 'id="measured_on"' in page and "03/04/2026" in page
    assert given.status_code == 303
    run_page = technician.get(given.location).get_data(as_text=True)
    assert "Mar 4, 2026" in run_page
