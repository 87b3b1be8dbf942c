"""The assays API as scripts use it: a plate imported by a technician, accepted by a
manager, its results read by aliquot and by participant; result sheets; analytes."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from biobank.assays.example import make_plate
from tests.answers import error_of, ok

VEGF = {
    ("LIM-001", "BL"): 900.0,
    ("LIM-001", "M2"): 300.0,
    ("LIM-002", "BL"): 600.0,
    ("LIM-002", "M2"): 500.0,
    ("LIM-003", "BL"): 10.0,
    ("LIM-003", "M2"): 80.0,
}


def plate_form(plate, **fields) -> dict:
    return {
        "reader_file": (io.BytesIO(plate.reader), "vegf-reader.xlsx"),
        "plate_map": (io.BytesIO(plate.plate_map), "vegf-map.xlsx"),
        "analyte": "VEGF",
        "read": "450",
        "reference": "540",
        **fields,
    }


def sheet_csv(rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Barcode", "Analyte", "Value", "Unit", "Method", "Date", "Comment"])
    writer.writerows(rows)
    return out.getvalue().encode()


def import_sheet(client, rows, name="mprotein.csv", **fields):
    return client.post(
        "/api/v1/assay-runs/sheets",
        data={"file": (io.BytesIO(sheet_csv(rows)), name), **fields},
    )


@pytest.fixture
def measured(serum, technician, manager):
    """The VEGF plate and an M-spike sheet of LIM-001, imported and accepted by API."""
    plate = make_plate({serum[key]: value for key, value in VEGF.items()})
    run = ok(technician.post("/api/v1/assay-runs/plates", data=plate_form(plate)), 201)["run"]
    ok(manager.post(f"/api/v1/assay-runs/{run}/accept"))
    rows = [
        [serum[("LIM-001", "BL")], "M-spike", "1.2", "g/dL", "SPE", "02/03/2026", ""],
        [serum[("LIM-001", "M2")], "M-spike", "0.5", "g/dL", "SPE", "04/05/2026", ""],
    ]
    sheet = ok(import_sheet(technician, rows), 201)
    ok(manager.post(f"/api/v1/assay-runs/{sheet['run']}/accept"))
    return plate


def test_a_plate_is_imported_by_a_technician_and_accepted_by_a_manager(serum, technician, manager):
    plate = make_plate({serum[key]: value for key, value in VEGF.items()})
    dry = ok(
        technician.post("/api/v1/assay-runs/plates", data=plate_form(plate, dry_run="true")), 201
    )
    assert dry["run"] is None and dry["analyte"] == "VEGF"
    assert dry["fit"]["model"] == "4PL" and dry["fit"]["r2"] > 0.999
    assert dry["qc"]["acceptable"] and all(s["pass"] for s in dry["standards"])
    assert dry["controls"] == []  # the plate map gives no kit range for its controls
    found = {s["barcode"]: s for s in dry["samples"]}
    below = serum[("LIM-003", "BL")]  # 10 pg/mL, under the lowest standard
    for barcode, expected in plate.truth.items():
        assert found[barcode]["known"] and found[barcode]["unit"] == "pg/mL"
        if barcode != below:
            assert found[barcode]["concentration"] == pytest.approx(expected, rel=0.01)
    assert found[below]["flag"] == "<LLOQ" and found[below]["concentration"] is None
    assert len(dry["problems"]) == 1 and below in dry["problems"][0]
    assert ok(technician.get("/api/v1/assay-runs"))["total"] == 0  # a dry run keeps nothing

    kept = ok(
        technician.post(
            "/api/v1/assay-runs/plates",
            data=plate_form(plate, instrument="Synergy H1", kit_lot="K-42"),
        ),
        201,
    )
    code = kept["run"]
    assert code.startswith("A") and kept["samples"] == dry["samples"]
    run = ok(technician.get(f"/api/v1/assay-runs/{code}"))
    assert (run["code"], run["kind"], run["analyte"], run["status"]) == (
        code,
        "plate",
        "VEGF",
        "preview",
    )
    assert run["file_name"] == "vegf-reader.xlsx" and len(run["file_sha256"]) == 64
    assert (run["instrument"], run["kit_lot"]) == ("Synergy H1", "K-42")
    assert run["problems"] == 1 and run["decided_at"] is None and run["reason"] == ""
    assert run["preview"]["samples"] == kept["samples"]
    assert run["created_by"] == technician.user.username
    listed = ok(technician.get("/api/v1/assay-runs?status=preview"))
    assert listed["total"] == 1 and [r["code"] for r in listed["items"]] == [code]
    assert "preview" not in listed["items"][0]
    assert ok(technician.get("/api/v1/assay-runs?status=accepted"))["total"] == 0

    assert error_of(technician.post(f"/api/v1/assay-runs/{code}/accept"), 403)["code"] == (
        "forbidden"
    )
    accepted = ok(manager.post(f"/api/v1/assay-runs/{code}/accept"))
    assert accepted["status"] == "accepted" and accepted["decided_at"]
    assert accepted["decided_by"] == manager.user.username
    again = error_of(manager.post(f"/api/v1/assay-runs/{code}/accept"), 409)
    assert again["code"] == "run.decided"

    twice = error_of(
        technician.post("/api/v1/assay-runs/plates", data=plate_form(plate, dry_run="true")), 409
    )
    assert twice["code"] == "run.duplicate_file"
    assert twice["fields"] == {"file": code} and code in twice["message"]


def test_a_run_is_rejected_with_its_reason(serum, technician, manager):
    plate = make_plate({serum[("LIM-001", "BL")]: 100.0})
    code = ok(technician.post("/api/v1/assay-runs/plates", data=plate_form(plate)), 201)["run"]
    assert (
        "reason"
        in error_of(manager.post(f"/api/v1/assay-runs/{code}/reject", json={}), 400)["fields"]
    )
    assert error_of(
        technician.post(f"/api/v1/assay-runs/{code}/reject", json={"reason": "No"}), 403
    )
    rejected = ok(
        manager.post(f"/api/v1/assay-runs/{code}/reject", json={"reason": "Standards swapped"})
    )
    assert (rejected["status"], rejected["reason"]) == ("rejected", "Standards swapped")
    assert ok(manager.get(f"/api/v1/aliquots/{serum[('LIM-001', 'BL')]}/results"))["items"] == []
    assert error_of(manager.get("/api/v1/assay-runs/A99999"), 404)["code"] == "not_found"


def test_a_long_list_from_a_laboratory_system_is_imported_like_the_blocks(serum, technician):
    plate = make_plate({serum[key]: value for key, value in VEGF.items() if value > 50})
    form = {
        **plate_form(plate, long_list="true", dry_run="true"),
        "reader_file": (io.BytesIO(plate.long_list), "lis.csv"),
        "well_column": "Position",
        "sample_column": "Sample ID",
        "value_column": "OD corr",
    }
    del form["read"], form["reference"]
    preview = ok(technician.post("/api/v1/assay-runs/plates", data=form), 201)
    found = {s["barcode"]: s["concentration"] for s in preview["samples"]}
    assert found == pytest.approx(plate.truth, rel=0.01) and preview["problems"] == []


def test_a_plate_form_is_checked_field_by_field(serum, technician):
    plate = make_plate({serum[("LIM-001", "BL")]: 100.0})
    missing = error_of(technician.post("/api/v1/assay-runs/plates", data={"analyte": "VEGF"}), 400)
    assert {"reader_file", "plate_map"} <= set(missing["fields"])
    not_a_file = plate_form(plate, reader_file="a text field")
    assert (
        "reader_file"
        in error_of(technician.post("/api/v1/assay-runs/plates", data=not_a_file), 400)["fields"]
    )
    misspelt = plate_form(plate, dryrun="true")
    assert (
        "dryrun"
        in error_of(technician.post("/api/v1/assay-runs/plates", data=misspelt), 400)["fields"]
    )
    wrong = plate_form(plate, model="3PL", read="blue")
    assert {"model", "read"} <= set(
        error_of(technician.post("/api/v1/assay-runs/plates", data=wrong), 400)["fields"]
    )
    unknown = error_of(
        technician.post("/api/v1/assay-runs/plates", data=plate_form(plate, analyte="XYZ")), 404
    )
    assert unknown["fields"] == {"analyte": "XYZ"}
    broken = plate_form(plate, plate_map=(io.BytesIO(b"not a workbook"), "map.xlsx"))
    refused = error_of(technician.post("/api/v1/assay-runs/plates", data=broken), 400)
    assert refused["code"] == "run.plate_map"
    assert ok(technician.get("/api/v1/assay-runs"))["total"] == 0


def test_a_result_sheet_is_previewed_and_a_bad_cell_names_its_row(serum, technician):
    barcode = serum[("LIM-001", "BL")]
    good = [[barcode, "M-spike", "1,2", "g/dL", "SPE", "02/03/2026", ""]]
    dry = ok(import_sheet(technician, good, dry_run="true"), 201)
    assert dry["run"] is None and dry["problems"] == []
    (row,) = dry["rows"]
    assert (row["row"], row["barcode"], row["analyte"]) == (2, barcode, "M_SPIKE")
    assert row["value"] == pytest.approx(12.0) and row["unit"] == "g/L" and row["known"]
    bad = [good[0], [serum[("LIM-001", "M2")], "M-spike", "abc", "g/L", "SPE", "", ""]]
    refused = error_of(import_sheet(technician, bad, name="bad.csv"), 400)
    assert refused["code"] == "run.result_sheet"
    assert "row 3" in refused["message"] and "row 3" in refused["fields"]["rows"]
    kept = ok(import_sheet(technician, good), 201)
    run = ok(technician.get(f"/api/v1/assay-runs/{kept['run']}"))
    assert (run["kind"], run["analyte"], run["status"]) == ("sheet", None, "preview")
    assert run["preview"]["rows"] == kept["rows"]
    assert "file" in error_of(technician.post("/api/v1/assay-runs/sheets", data={}), 400)["fields"]


def test_results_by_aliquot_and_by_participant(measured, serum, technician):
    baseline = serum[("LIM-001", "BL")]
    found = ok(technician.get(f"/api/v1/aliquots/{baseline.lower()}/results"))
    assert found["barcode"] == baseline
    by_analyte = {r["analyte"]: r for r in found["items"]}
    assert set(by_analyte) == {"VEGF", "M_SPIKE"}
    vegf = by_analyte["VEGF"]
    assert vegf["value"] == pytest.approx(900.0, rel=0.01) and vegf["unit"] == "pg/mL"
    assert (vegf["participant"], vegf["visit"], vegf["barcode"]) == ("LIM-001", "BL", baseline)
    assert vegf["run"].startswith("A") and vegf["shown"] and vegf["sample_type"] == "SER"
    assert by_analyte["M_SPIKE"]["value"] == pytest.approx(12.0)

    course = ok(technician.get("/api/v1/participants/LIM-001/results"))
    assert set(course["analytes"]) == {"VEGF", "M_SPIKE"}
    assert [r["visit"] for r in course["analytes"]["VEGF"]] == ["BL", "M2"]
    responses = course["responses"]
    assert responses["criteria_version"]
    (at_m2,) = responses["vegf"]
    assert at_m2["visit"] == "M2" and at_m2["category"] == "partial"
    assert at_m2["percent_change"] == pytest.approx(-66.7, abs=0.2) and at_m2["rule"]
    assert at_m2["criteria_version"] == responses["criteria_version"]
    assert [r["visit"] for r in responses["haematological"]] == ["M2"]

    nothing = ok(technician.get("/api/v1/participants/LIM-002/results"))["analytes"]
    assert set(nothing) == {"VEGF"}
    assert error_of(technician.get("/api/v1/participants/LIM-999/results"), 404)
    assert error_of(technician.get("/api/v1/aliquots/NOT-A-CODE/results"), 400)


def test_the_study_export_downloads_as_csv_and_xlsx(measured, technician):
    exported = technician.get("/api/v1/assay-results/export.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert "study-results.csv" in exported.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert len(table) == 6 + 2
    assert {r["participant"] for r in table} == {"LIM-001", "LIM-002", "LIM-003"}
    book = technician.get("/api/v1/assay-results/export.xlsx")
    assert book.status_code == 200
    rows = list(load_workbook(io.BytesIO(book.data))["Results"].values)
    assert rows[0][0] == "participant" and len(rows) == 1 + 8


def test_a_researcher_may_not_read_results(measured, serum, api_as):
    researcher = api_as("researcher")
    for url in (
        f"/api/v1/aliquots/{serum[('LIM-001', 'BL')]}/results",
        "/api/v1/participants/LIM-001/results",
        "/api/v1/assay-results/export.csv",
        "/api/v1/assay-results/export.xlsx",
        "/api/v1/assay-runs",
    ):
        assert error_of(researcher.get(url), 403)["code"] == "forbidden", url
    assert ok(researcher.get("/api/v1/analytes"))  # the list of analytes is for anyone


def test_analytes_are_listed_and_declared_by_a_manager(technician, manager):
    listed = {a["code"]: a for a in ok(technician.get("/api/v1/analytes"))}
    assert listed["VEGF"]["kind"] == "numeric" and listed["VEGF"]["unit"] == "pg/mL"
    new = {"code": "il6", "name": "Interleukin 6", "kind": "numeric", "unit": "pg/mL"}
    assert error_of(technician.post("/api/v1/analytes", json=new), 403)
    declared = ok(manager.post("/api/v1/analytes", json={**new, "aliases": ["IL-6"]}), 201)
    assert declared == {
        "code": "IL6",
        "name": "Interleukin 6",
        "kind": "numeric",
        "unit": "pg/mL",
        "values": [],
        "aliases": ["IL-6"],
    }
    assert "IL6" in {a["code"] for a in ok(technician.get("/api/v1/analytes"))}
    assert error_of(manager.post("/api/v1/analytes", json=new), 409)["fields"] == {"code": "IL6"}
    assert (
        "kind"
        in error_of(manager.post("/api/v1/analytes", json={**new, "kind": "x"}), 400)["fields"]
    )
    qualitative = ok(
        manager.post(
            "/api/v1/analytes",
            json={"code": "CRYO", "kind": "qualitative", "values": ["Positive", "negative"]},
        ),
        201,
    )
    assert qualitative["values"] == ["positive", "negative"] and qualitative["unit"] == ""


def test_the_assay_routes_are_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    for path, method in [
        ("/api/v1/analytes", "get"),
        ("/api/v1/analytes", "post"),
        ("/api/v1/assay-runs/plates", "post"),
        ("/api/v1/assay-runs/sheets", "post"),
        ("/api/v1/assay-runs", "get"),
        ("/api/v1/assay-runs/{code}", "get"),
        ("/api/v1/assay-runs/{code}/accept", "post"),
        ("/api/v1/assay-runs/{code}/reject", "post"),
        ("/api/v1/aliquots/{barcode}/results", "get"),
        ("/api/v1/participants/{code}/results", "get"),
        ("/api/v1/assay-results/export.csv", "get"),
        ("/api/v1/assay-results/export.xlsx", "get"),
    ]:
        operation = spec["paths"][path][method]
        assert operation.get("description") or operation.get("summary"), path
    plate = spec["paths"]["/api/v1/assay-runs/plates"]["post"]["requestBody"]["content"]
    form = spec["components"]["schemas"]["PlateUpload"]["properties"]
    assert "multipart/form-data" in plate
    assert form["reader_file"]["format"] == "binary" and "dry_run" in form
    xlsx = spec["paths"]["/api/v1/assay-results/export.xlsx"]["get"]["responses"]["200"]
    assert any("spreadsheet" in t for t in xlsx["content"])
