"""A plate from its files to accepted results: preview, problems, accept, reject, the
same file twice; result sheets; the command line's JSON."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from biobank.assays import pipeline, services
from biobank.assays.example import make_plate
from biobank.assays.models import AssayRun, Result, Well
from biobank.errors import Conflict, Invalid
from biobank.samples.barcodes import new_aliquot_barcode

OPTIONS = pipeline.Options(read=450, reference=540)


def concentrations(serum) -> dict[str, float]:
    values = [40.0, 90.0, 180.0, 350.0, 700.0, 25.0]
    return dict(zip(serum.values(), values, strict=True))


def test_a_plate_preview_finds_the_true_concentrations_and_writes_nothing(serum, db):
    truth = concentrations(serum)
    plate = make_plate(truth)
    preview = services.preview_plate(
        plate.reader, "vegf.xlsx", plate.plate_map, "VEGF", OPTIONS, keep=False, actor=None
    )
    data = preview.data
    assert data["fit"]["model"] == "4PL" and data["fit"]["r2"] > 0.999
    assert all(s["pass"] for s in data["standards"])
    found = {s["barcode"]: s for s in data["samples"]}
    for barcode, expected in truth.items():
        assert found[barcode]["flag"] is None
        assert found[barcode]["concentration"] == pytest.approx(expected, rel=0.01)
        assert found[barcode]["unit"] == "pg/mL"
    assert data["problems"] == []
    assert db.session.execute(sa.select(sa.func.count(AssayRun.id))).scalar() == 0


def test_out_of_range_samples_are_flagged_with_their_limit_never_extrapolated(serum, db):
    codes = list(serum.values())
    plate = make_plate(
        {codes[0]: 5.0, codes[1]: 3000.0, codes[2]: 100.0}, dilutions={codes[2]: 4.0}
    )
    data = services.preview_plate(
        plate.reader, "p.xlsx", plate.plate_map, "VEGF", OPTIONS, keep=False, actor=None
    ).data
    found = {s["barcode"]: s for s in data["samples"]}
    assert found[codes[0]]["flag"] == "<LLOQ" and found[codes[0]]["concentration"] is None
    assert found[codes[0]]["limit"] == pytest.approx(15.625)
    assert found[codes[1]]["flag"] == ">ULOQ" and found[codes[1]]["limit"] == pytest.approx(1000)
    assert found[codes[2]]["concentration"] == pytest.approx(400.0, rel=0.01)
    assert any("re-run" in p for p in data["problems"])


def test_a_barcode_that_is_not_an_aliquot_is_a_problem_and_gets_no_result(serum, db):
    stranger = new_aliquot_barcode()
    plate = make_plate({next(iter(serum.values())): 100.0, stranger: 100.0})
    preview = services.preview_plate(
        plate.reader, "p.xlsx", plate.plate_map, "VEGF", OPTIONS, actor=None
    )
    assert any(stranger in p and "not an aliquot" in p for p in preview.data["problems"])
    services.accept_run(preview.run.code, actor=None)
    db.session.flush()
    assert db.session.execute(sa.select(sa.func.count(Result.id))).scalar() == 1
    assert db.session.execute(sa.select(sa.func.count(Well.id))).scalar() == 16 + 6 + 4


def test_accepting_writes_results_once_and_the_same_file_is_refused(serum, db):
    plate = make_plate(concentrations(serum))
    run = services.preview_plate(
        plate.reader, "vegf.xlsx", plate.plate_map, "VEGF", OPTIONS, actor=None
    ).run
    assert run.status == "preview"
    assert db.session.execute(sa.select(sa.func.count(Result.id))).scalar() == 0
    services.accept_run(run.code, actor=None)
    assert run.status == "accepted" and run.decided_at is not None
    assert db.session.execute(sa.select(sa.func.count(Result.id))).scalar() == 6
    with pytest.raises(Conflict):
        services.accept_run(run.code, actor=None)
    with pytest.raises(Conflict) as again:
        services.preview_plate(
            plate.reader, "renamed.xlsx", plate.plate_map, "VEGF", OPTIONS, actor=None
        )
    assert run.code in str(again.value.message)


def test_a_rejected_run_keeps_its_reason_and_writes_no_result(serum, db):
    plate = make_plate(concentrations(serum))
    run = services.preview_plate(
        plate.reader, "v.xlsx", plate.plate_map, "VEGF", OPTIONS, actor=None
    ).run
    with pytest.raises(Invalid):
        services.reject_run(run.code, "", actor=None)
    services.reject_run(run.code, "Standards pipetted twice", actor=None)
    assert (run.status, run.reason) == ("rejected", "Standards pipetted twice")
    assert db.session.execute(sa.select(sa.func.count(Result.id))).scalar() == 0


def test_a_broken_plate_map_is_refused_naming_the_sheet(serum, db):
    plate = make_plate(concentrations(serum))
    with pytest.raises(Invalid) as refused:
        services.preview_plate(
            plate.reader, "v.xlsx", b"not a workbook", "VEGF", OPTIONS, actor=None
        )
    assert "Plate map" in str(refused.value.message)


def test_the_command_line_prints_the_preview_as_json(app, serum, db, tmp_path):
    plate = make_plate(concentrations(serum))
    reader, plate_map = tmp_path / "reader.xlsx", tmp_path / "map.xlsx"
    reader.write_bytes(plate.reader)
    plate_map.write_bytes(plate.plate_map)
    db.session.commit()
    command = [
        "assay",
        "import-plate",
        str(reader),
        "--plate-map",
        str(plate_map),
        "--analyte",
        "VEGF",
        "--read",
        "450",
        "--reference",
        "540",
        "--json",
    ]
    dry = app.test_cli_runner().invoke(args=command)
    assert dry.exit_code == 0, dry.output
    data = json.loads(dry.output)
    assert set(data) >= {"fit", "standards", "samples", "problems"}
    assert set(data["fit"]) >= {"model", "params", "r2"}
    assert set(data["standards"][0]) >= {
        "name",
        "expected",
        "back_calculated",
        "recovery_pct",
        "pass",
    }
    assert set(data["samples"][0]) >= {
        "barcode",
        "wells",
        "concentration",
        "unit",
        "cv_pct",
        "flag",
    }
    accepted = app.test_cli_runner().invoke(args=[*command, "--accept"])
    assert accepted.exit_code == 0, accepted.output
    assert json.loads(accepted.output)["status"] == "accepted"
    twice = app.test_cli_runner().invoke(args=[*command, "--accept"])
    assert twice.exit_code == 1 and "already imported" in twice.output


def test_a_long_list_from_a_laboratory_system_reads_like_the_blocks(serum, db):
    truth = concentrations(serum)
    plate = make_plate(truth)
    options = pipeline.Options(
        long_list=True, well_column="Position", sample_column="Sample ID", value_column="OD corr"
    )
    data = services.preview_plate(
        plate.long_list, "lis.csv", plate.plate_map, "VEGF", options, keep=False, actor=None
    ).data
    found = {s["barcode"]: s["concentration"] for s in data["samples"]}
    assert found == pytest.approx(truth, rel=0.01)
    assert data["problems"] == []
