"""flask inventory template | import: the template written, a preview that writes nothing,
an apply that writes all or nothing, the JSON report and the exit codes."""

from __future__ import annotations

import io
import json

import openpyxl
import sqlalchemy as sa

from biobank.extensions import db as _db
from biobank.inventory.columns import COLUMNS
from biobank.samples.models import Aliquot, InventoryImport
from tests.inventory import aliquot, tube, xlsx

KEYS = ["filename", "sha256", "rows", "errors", "warnings", "ignored_columns", "created", "applied"]


def run(app, tmp_path, data: bytes, *args, name: str = "inventory.xlsx"):
    path = tmp_path / name
    path.write_bytes(data)
    return app.test_cli_runner().invoke(args=["inventory", "import", str(path), *args])


def aliquots() -> int:
    _db.session.expire_all()
    return _db.session.execute(sa.select(sa.func.count(Aliquot.id))).scalar()


def test_the_template_has_every_column_and_an_instructions_sheet(app, tmp_path):
    path = tmp_path / "template.xlsx"
    result = app.test_cli_runner().invoke(args=["inventory", "template", str(path)])
    assert result.exit_code == 0, result.output

    book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()))
    assert book.sheetnames == ["Inventory", "Instructions"]
    header = [cell.value for cell in book["Inventory"][1]]
    assert header == [c.key for c in COLUMNS if c.key != "volume_ml"]
    assert book["Inventory"].max_row == 1  # nothing to delete before filling it
    described = [row[0] for row in book["Instructions"].iter_rows(values_only=True)]
    assert all(column.key in described for column in COLUMNS)


def test_the_french_template_has_french_headers_that_are_read_back(app, bank, tmp_path):
    path = tmp_path / "modele.xlsx"
    result = app.test_cli_runner().invoke(args=["inventory", "template", str(path), "--lang", "fr"])
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()))
    assert book.sheetnames[0] == "Inventaire"
    sheet = book["Inventaire"]
    header = [cell.value for cell in sheet[1]]
    assert header[:3] == ["participant", "centre", "bras"] and "prélevé le" in header
    keys = [c.key for c in COLUMNS if c.key != "volume_ml"]
    for key, value in aliquot(1).items():
        sheet.cell(2, keys.index(key) + 1, value)
    out = io.BytesIO()
    book.save(out)

    filled = run(app, tmp_path, out.getvalue(), "--json")
    assert filled.exit_code == 0, filled.output
    assert json.loads(filled.stdout)["created"]["aliquots"] == 1


def test_a_preview_prints_the_report_as_json_and_writes_nothing(app, bank, tmp_path):
    result = run(app, tmp_path, xlsx(tube(3)), "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert list(report) == KEYS
    assert report["rows"] == 3 and report["errors"] == [] and report["applied"] is False
    assert report["created"] == {
        "participants": 1,
        "visits": 1,
        "specimens": 1,
        "aliquots": 3,
        "positions": 3,
        "boxes": 0,
    }
    assert aliquots() == 0


def test_a_preview_with_problems_lists_them_and_exits_1(app, bank, tmp_path):
    result = run(app, tmp_path, xlsx([aliquot(1), aliquot(2, volume_ul=900)]), "--json")

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["errors"] == [
        {"row": 3, "column": "volume_ul", "message": report["errors"][0]["message"]}
    ]
    assert "900" in report["errors"][0]["message"]


def test_apply_writes_the_inventory_and_a_second_apply_is_refused(app, bank, tmp_path):
    data = xlsx(tube(3))
    result = run(app, tmp_path, data, "--apply", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["applied"] is True
    assert aliquots() == 3
    record = _db.session.execute(sa.select(InventoryImport)).scalar_one()
    assert record.applied_by_id is None and record.aliquots == 3

    again = run(app, tmp_path, data, "--apply", name="copy.xlsx")
    assert again.exit_code == 1
    assert "applied on" in again.output and "the command line" in again.output
    assert aliquots() == 3


def test_apply_with_problems_exits_1_and_writes_nothing(app, bank, tmp_path):
    rows = [*tube(2), aliquot(3, participant="LIM-102", consent_given_on=None)]
    result = run(app, tmp_path, xlsx(rows), "--apply", "--json")

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [(e["row"], e["column"]) for e in report["errors"]] == [(4, "consent_given_on")]
    assert "Nothing was imported" in result.output
    assert aliquots() == 0
    assert _db.session.execute(sa.select(InventoryImport)).first() is None


def test_site_imports_for_one_centre_only(app, bank, tmp_path):
    rows = [aliquot(1), aliquot(2, participant="PAR-001", site="PAR", box=None, position=None)]
    result = run(app, tmp_path, xlsx(rows), "--site", "LIM")

    assert result.exit_code == 1
    assert "row 3, site: This row is of centre PAR" in result.stdout


def test_the_text_report_says_what_would_be_created_and_what_was_left_out(app, bank, tmp_path):
    header = (*tube(1)[0].keys(), "Notes")
    result = run(app, tmp_path, xlsx(tube(1), header))

    assert result.exit_code == 0, result.output
    assert "1 rows; would create: 1 participants, 1 visits" in result.stdout
    assert "ignored columns: Notes" in result.stdout


def test_an_unreadable_file_exits_1_naming_it(app, bank, tmp_path):
    result = run(app, tmp_path, b"PK\x03\x04 not really a zip", name="broken.xlsx")
    assert result.exit_code == 1 and "broken.xlsx" in result.output
