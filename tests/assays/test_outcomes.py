"""Results on the aliquot and participant pages, the computed response, the study export,
result sheets, plate design."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, date, datetime

import openpyxl
import pytest
import sqlalchemy as sa

from biobank.assays import outcomes, reportable, response, services
from biobank.assays.models import Result
from biobank.errors import Invalid
from biobank.samples import services as samples
from tests.assays.conftest import sheet
from tests.pages import refused


def test_a_result_sheet_converts_units_and_names_bad_cells(serum, db):
    good = services.preview_results(
        sheet([[serum[("LIM-001", "BL")], "M-spike", "1,2", "g/dL", "SPE", "02/03/2026", ""]]),
        "ok.xlsx", keep=False, actor=None,
    ).data  # fmt: skip
    assert good["rows"][0]["value"] == pytest.approx(12.0) and good["rows"][0]["unit"] == "g/L"
    with pytest.raises(Invalid) as refused:
        services.preview_results(
            sheet([[serum[("LIM-001", "BL")], "M-spike", "abc", "g/L", "SPE", "", ""]]),
            "bad.xlsx", actor=None,
        )  # fmt: skip
    assert "row 2" in str(refused.value.message)


def test_results_reach_the_aliquot_and_the_participant(measured, serum, login_as):
    rows = outcomes.aliquot_results(samples.find_aliquot(serum[("LIM-001", "BL")], actor=None).id)
    assert {r.analyte for r in rows} == {"VEGF", "M_SPIKE"}
    manager = login_as("manager")
    page = manager.get(f"/aliquots/{serum[('LIM-001', 'BL')]}").get_data(as_text=True)
    assert "M_SPIKE" in page and "VEGF" in page
    page = manager.get("/participants/LIM-001").get_data(as_text=True)
    assert "Serum VEGF response" in page and "partial" in page
    picture = manager.get("/participants/LIM-001/results.png?analyte=VEGF")
    assert picture.status_code == 200 and picture.data.startswith(b"\x89PNG")


def test_responses_are_computed_from_the_results(measured):
    course = outcomes.time_course("LIM-001", actor=None)
    computed = outcomes.responses_of(course, response.load_criteria())
    (vegf,) = computed.vegf
    assert vegf.visit == "M2" and vegf.percent_change == pytest.approx(-66.7, abs=0.2)
    assert vegf.category == "partial"
    (haem,) = computed.haematological
    assert haem.percent_change == pytest.approx(-58.3, abs=0.1)
    assert haem.category == "partial"
    low = outcomes.responses_of(
        outcomes.time_course("LIM-003", actor=None), response.load_criteria()
    )
    assert "LLOQ" in low.vegf[0].rule


def test_the_study_export_is_reproducible(measured, db):
    criteria = response.load_criteria()
    first = outcomes.export_csv(criteria)
    assert first == outcomes.export_csv(criteria)
    table = list(csv.DictReader(io.StringIO(first.decode())))
    assert {r["participant"] for r in table} == {"LIM-001", "LIM-002", "LIM-003"}
    assert all(r["sprec_code"] for r in table)
    vegf_m2 = next(
        r
        for r in table
        if r["participant"] == "LIM-001" and r["visit"] == "M2" and r["analyte"] == "VEGF"
    )
    assert vegf_m2["response"] == "partial" and vegf_m2["criteria_version"]
    one = outcomes.export_xlsx(criteria, created=datetime(2026, 11, 1, tzinfo=UTC))
    two = outcomes.export_xlsx(criteria, created=datetime(2026, 11, 1, tzinfo=UTC))
    assert one == two
    later = outcomes.export_xlsx(criteria, created=datetime(2026, 12, 1, tzinfo=UTC))
    differing = [
        name for name in zipfile.ZipFile(io.BytesIO(one)).namelist()
        if zipfile.ZipFile(io.BytesIO(one)).read(name)
        != zipfile.ZipFile(io.BytesIO(later)).read(name)
    ]  # fmt: skip
    assert differing == ["docProps/core.xml"]


def test_plate_design_records_the_volume_taken(serum, login_as, db):
    technician = login_as("technician")
    codes = list(serum.values())[:3]
    answer = technician.post("/assays/plate-design", data={
        "template": "vegf-elisa-7pt", "volume_per_well_ul": "100",
        "aliquots": f"{codes[0]}\n{codes[1]} 2\n{codes[2]}"})  # fmt: skip
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    layout = openpyxl.load_workbook(io.BytesIO(answer.data))["Layout"]
    cells = {c.value for row in layout.iter_rows() for c in row}
    assert set(codes) <= cells
    db.session.expire_all()
    first = samples.find_aliquot(codes[0], actor=None)
    diluted = samples.find_aliquot(codes[1], actor=None)
    assert (first.volume_ul, diluted.volume_ul) == (300, 400)
    assert first.custody_events[-1].kind == "CONSUMED"
    assert db.session.execute(sa.select(sa.func.count(Result.id))).scalar() == 0


def test_a_box_scanned_for_a_plate_stands_for_its_tubes(serum, login_as):
    technician = login_as("technician")
    answer = technician.post(
        "/assays/plate-design",
        data={"template": "vegf-elisa-7pt", "volume_per_well_ul": "50", "aliquots": "BX-0001"},
    )
    assert "do not fit" in refused(technician, answer)


def test_a_declared_analyte_is_read_from_result_sheets(app, serum, db):
    db.session.commit()
    added = app.test_cli_runner().invoke(
        args=["assay", "analyte-add", "IL6", "Interleukin 6", "--unit", "pg/mL",
              "--alias", "IL-6"])  # fmt: skip
    assert added.exit_code == 0, added.output
    preview = services.preview_results(
        sheet([[serum[("LIM-001", "BL")], "IL-6", "0,012", "ng/mL", "ELISA", "2026-03-02", ""]]),
        "il6.xlsx", keep=False, actor=None,
    ).data  # fmt: skip
    assert preview["rows"][0]["analyte"] == "IL6"
    assert preview["rows"][0]["value"] == pytest.approx(12.0)


def test_the_demo_has_an_accepted_plate_and_writes_an_example_to_import(app, db, tmp_path):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["demo", "setup"]).exit_code == 0
    course = outcomes.time_course("LIM-002", actor=None)
    assert [r.visit for r in course["VEGF"]] == ["BL", "M2", "M4", "M6"]
    assert course["VEGF"][0].value == pytest.approx(3100.0, rel=0.02)
    written = runner.invoke(args=["demo", "plate", str(tmp_path)])
    assert written.exit_code == 0, written.output
    files = [
        str(tmp_path / "vegf-reader.xlsx"),
        "--plate-map",
        str(tmp_path / "vegf-plate-map.xlsx"),
    ]
    dry = runner.invoke(args=["assay", "import-plate", *files, "--analyte", "VEGF", "--json"])
    assert dry.exit_code == 0, dry.output


def _row(run: str, value, flag=None, detail="") -> outcomes.Row:
    return outcomes.Row(
        "LIM-001", "LIM", "G1", "de_novo", "BL", date(2026, 3, 2), 0, "VEGF", value,
        "pg/mL", None, flag, 4000.0 if flag else None, None, detail, "B1", "SER",
        "SER-SST-A-B-N-B-D", run, "ELISA", None,
    )  # fmt: skip


def test_a_later_run_without_a_result_never_stands_for_the_visit():
    why = "no result — replicates disagree: A4 saturated"
    measured = reportable.Candidate(1, "B1", 2480.0)
    # Even a re-assay asked for gives way: a sample without a result has nothing to report.
    unread = reportable.Candidate(2, "B1", None, detail=why, requested="control failed")
    assert reportable.decide(measured, [unread], reportable.DEFAULT_RULE).keep is measured
    alone = _row("A00002", None, detail=why)
    assert outcomes.reportable_rows([alone]) == [alone]
    assert outcomes.per_visit_values([alone]) == []  # the visit has no value
    assert alone.shown == why
