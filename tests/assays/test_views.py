"""The run pages as a technician and a manager see them."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
import sqlalchemy as sa

from biobank.assays import plot, services
from biobank.assays.example import make_plate
from biobank.assays.models import Analyte, AssayRun, Result
from biobank.custody.models import CustodyEvent
from biobank.samples import services as samples
from tests.assays.conftest import sheet
from tests.assays.conftest import upload_plate as upload
from tests.pages import refused


def test_a_technician_imports_and_only_a_manager_accepts(serum, login_as):
    technician, manager = login_as("technician"), login_as("manager")
    answer = upload(technician, make_plate({next(iter(serum.values())): 200.0}))
    assert answer.status_code == 303
    run_url = answer.headers["Location"]
    page = technician.get(run_url).get_data(as_text=True)
    assert "A manager accepts or rejects this run." in page
    assert technician.post(f"{run_url}/accept").status_code == 403
    assert manager.get(f"{run_url}/curve.svg").data.startswith(b"<?xml")
    assert manager.post(f"{run_url}/accept").status_code == 303
    assert "accepted" in manager.get(run_url).get_data(as_text=True)


def test_a_curve_that_fails_its_acceptance_is_shown_with_its_problems(serum, login_as):
    technician = login_as("technician")
    wobble = make_plate({next(iter(serum.values())): 200.0}, noise=lambda n: 0.35 * (-1) ** n)
    run_url = upload(technician, wobble).headers["Location"]
    page = technician.get(run_url)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "curve fails" in text and "outside" in text


def test_the_same_file_twice_points_to_its_run(serum, login_as):
    technician = login_as("technician")
    plate = make_plate({next(iter(serum.values())): 200.0})
    upload(technician, plate)
    again = upload(technician, plate)
    assert again.status_code == 303
    assert "already imported: run A00001" in technician.get("/assays").get_data(as_text=True)


# --- a unit-less analyte (a ratio) ---------------------------------------------------------

EMPTY_UNIT = re.compile(r"\s\(\s*\)")  # "FLC_RATIO ()", not a script's "submit()"


def test_a_ratio_is_offered_without_an_empty_unit(serum, login_as):
    text = html.unescape(login_as("technician").get("/assays").get_data(as_text=True))

    assert "FLC_RATIO — Serum free light chain kappa/lambda ratio</option>" in text
    assert "VEGF — VEGF-A (pg/mL)</option>" in text
    assert not EMPTY_UNIT.search(text)


@pytest.fixture
def ratios(serum, db):
    """LIM-001's free light chain ratio at BL and M2, from an accepted sheet (no unit)."""
    rows = [
        [serum[("LIM-001", "BL")], "FLC ratio", "1.8", "", "Freelite", "02/03/2026", ""],
        [serum[("LIM-001", "M2")], "FLC ratio", "1.2", "", "Freelite", "04/05/2026", ""],
    ]
    preview = services.preview_results(sheet(rows), "flc.xlsx", actor=None)
    services.accept_run(preview.run.code, actor=None)
    db.session.commit()


def test_a_ratio_shows_no_empty_unit_on_pages_and_picture(ratios, serum, login_as, monkeypatch):
    labels = []
    draw = plot.time_course_picture
    monkeypatch.setattr(
        plot, "time_course_picture", lambda points, **kw: labels.append(kw) or draw(points, **kw)
    )
    manager = login_as("manager")

    participant = manager.get("/participants/LIM-001").get_data(as_text=True)
    aliquot = manager.get(f"/aliquots/{serum[('LIM-001', 'BL')]}").get_data(as_text=True)
    picture = manager.get("/participants/LIM-001/results.png?analyte=FLC_RATIO")

    assert "<h3>FLC_RATIO</h3>" in participant and "<td>1.8</td>" in participant
    assert "FLC_RATIO" in aliquot
    assert not EMPTY_UNIT.search(participant) and not EMPTY_UNIT.search(aliquot)
    assert picture.data.startswith(b"\x89PNG")
    assert [kw["ylabel"] for kw in labels] == ["FLC_RATIO"]


def test_a_ratio_has_an_empty_unit_in_the_export(ratios, login_as):
    table = csv.DictReader(
        io.StringIO(login_as("manager").get("/assays/export.csv").get_data(as_text=True))
    )
    ratio = [row for row in table if row["analyte"] == "FLC_RATIO"]

    assert [(row["visit"], row["value"], row["unit"]) for row in ratio] == [
        ("BL", "1.8", ""),
        ("M2", "1.2", ""),
    ]


# --- refusals: Post/Redirect/Get, what was typed kept once, nothing written ------------------


def count(db, model) -> int:
    db.session.expire_all()
    return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar()


def test_a_refused_plate_import_keeps_what_was_typed_until_reloaded(serum, login_as, db):
    technician = login_as("technician")
    plate = make_plate({next(iter(serum.values())): 200.0})
    answer = technician.post(
        "/assays/plates",
        data={
            "section": "plate",
            "reader_file": (io.BytesIO(plate.reader), "plate.xlsx"),
            "plate_map": (io.BytesIO(plate.plate_map), "map.xlsx"),
            "analyte": "VEGF",
            "read": "4S0",
            "reference": "540",
            "model": "5PL",
            "weighting": "none",
            "long_list": "1",
            "instrument": "Tecan Sunrise",
            "kit_lot": "LOT-42",
        },
        content_type="multipart/form-data",
    )

    text = refused(technician, answer)
    assert count(db, AssayRun) == 0
    assert (
        '<p class="field-error" id="read-error-1">Read (nm or block number): Enter a whole '
        "number.</p>" in text
    )
    assert 'name="read" inputmode="numeric" placeholder="450" value="4S0" aria-invalid' in text
    assert 'value="Tecan Sunrise"' in text and 'value="LOT-42"' in text
    assert "<option selected>5PL</option>" in text
    assert '<option value="none" selected>' in text
    assert 'name="long_list" value="1" checked' in text
    assert "Choose the files again" in text

    reloaded = html.unescape(technician.get("/assays").get_data(as_text=True))
    assert "Enter a whole number." not in reloaded and "Tecan Sunrise" not in reloaded
    assert "Choose the files again" not in reloaded
    assert count(db, AssayRun) == 0


def test_a_plate_refused_by_the_service_keeps_the_analyte_chosen(serum, login_as, db):
    technician = login_as("technician")
    answer = technician.post(
        "/assays/plates",
        data={
            "section": "plate",
            "reader_file": (io.BytesIO(b"not a workbook"), "plate.xlsx"),
            "plate_map": (io.BytesIO(b"not a workbook"), "map.xlsx"),
            "analyte": "FLC_RATIO",
            "kit_lot": "LOT-42",
        },
        content_type="multipart/form-data",
    )

    text = refused(technician, answer)
    assert count(db, AssayRun) == 0
    assert '<option value="FLC_RATIO" selected>' in text
    assert '<option value="VEGF" selected>' not in text
    assert 'value="LOT-42"' in text


def test_a_refused_result_sheet_opens_its_form_again_and_records_nothing(serum, login_as, db):
    technician = login_as("technician")
    bad = sheet([[serum[("LIM-001", "BL")], "M-spike", "abc", "g/L", "SPE", "02/03/2026", ""]])
    answer = technician.post(
        "/assays/sheets",
        data={"section": "sheet", "result_file": (io.BytesIO(bad), "mprotein.xlsx")},
        content_type="multipart/form-data",
    )

    text = refused(technician, answer)
    assert "mprotein.xlsx: row 2" in text
    assert '<details class="tube" open>\n  <summary>Import a result sheet' in text
    assert count(db, AssayRun) == count(db, Result) == 0

    reloaded = html.unescape(technician.get("/assays").get_data(as_text=True))
    assert "mprotein.xlsx" not in reloaded
    assert '<details class="tube" open>\n  <summary>Import a plate' in reloaded


def test_a_refused_analyte_keeps_what_was_typed_until_reloaded(login_as, db):
    manager = login_as("manager")
    manager.get("/assays/analytes")
    before = count(db, Analyte)

    answer = manager.post(
        "/assays/analytes",
        data={"code": "IL 6", "name": "Interleukin 6", "kind": "numeric", "unit": "pg/mL",
              "aliases": "IL-6, interleukine 6"},
    )  # fmt: skip

    text = refused(manager, answer)
    assert count(db, Analyte) == before
    # The flash, the summary of the form and the field.
    assert text.count("A code of letters, digits and _ (at most 16).") == 3
    assert 'value="IL 6"' in text and 'value="Interleukin 6"' in text
    assert 'value="IL-6, interleukine 6"' in text
    reloaded = html.unescape(manager.get("/assays/analytes").get_data(as_text=True))
    assert "A code of letters" not in reloaded and "Interleukin 6" not in reloaded
    assert count(db, Analyte) == before


def test_a_refused_plate_design_takes_no_volume_and_keeps_the_tubes(serum, login_as, db):
    technician = login_as("technician")
    first, second = serum[("LIM-001", "BL")], serum[("LIM-001", "M2")]
    events = count(db, CustodyEvent)
    tubes = f"{first} 10\n{second}"  # the first tube gives 60 µL, the second lacks 600 µL

    answer = technician.post(
        "/assays/plate-design",
        data={"template": "vegf-elisa-7pt", "volume_per_well_ul": "300", "aliquots": tubes},
    )

    text = refused(technician, answer)
    assert count(db, CustodyEvent) == events
    assert [samples.find_aliquot(c, actor=None).volume_ul for c in (first, second)] == [500, 500]
    assert f">{tubes}</textarea>" in text
    assert 'name="volume_per_well_ul" inputmode="numeric" value="300">' in text
    assert f'<p class="field-error" id="aliquots-error-1">Tubes: {second} holds 500 µL' in text
    reloaded = html.unescape(technician.get("/assays/plate-design").get_data(as_text=True))
    assert first not in reloaded and 'value="100"' in reloaded
    assert count(db, CustodyEvent) == events


def test_a_refused_rejection_keeps_its_form_open(serum, login_as, db):
    technician, manager = login_as("technician"), login_as("manager")
    run_url = upload(technician, make_plate({next(iter(serum.values())): 200.0})).location

    answer = manager.post(f"{run_url}/reject", data={"reason": "  "})

    text = refused(manager, answer)
    assert "A reason is required to reject a run." in text
    assert '<details class="danger-zone" open>' in text
    db.session.expire_all()
    assert db.session.execute(sa.select(AssayRun.status)).scalar() == "preview"
    reloaded = manager.get(run_url).get_data(as_text=True)
    assert '<details class="danger-zone" >' in reloaded and "A reason is required" not in reloaded
