"""Wells that read over the reader's range, or give no reading, never make a sample
disappear: every sample of the plate map is in the preview and in the accepted run, with
its status ("> ULOQ", "no result"…) and the reason; a saturated standard or blank is left
out with a named problem, the plate is not refused."""

from __future__ import annotations

import io

import openpyxl
import pytest
import sqlalchemy as sa

from biobank.assays import pipeline, services
from biobank.assays.example import ROWS, make_plate
from biobank.assays.models import Result, Well
from biobank.assays.platereader import (
    EMPTY,
    OVERFLOW,
    UNREADABLE,
    ReaderFileError,
    marker,
    read_reader_file,
)
from tests.answers import ok

SATURATED = "reader saturated — dilute and re-assay"
SATURATION_MARKERS = [
    "OVER", "Over", "over", "OVRFLW", "overflow", "OVERFLOW", ">3.500", "> 4.0", "> 3,5",
    "Sat", "SAT", "#SAT", "*****", "*", "Range?", "RANGE?", " OVER ",
]  # fmt: skip
NO_READING_MARKERS = [
    "-", "--", "N/A", "n/a", "NaN", "nan", "#N/A", "Error", "ERROR", "?????", "?", "#VALUE!",
]  # fmt: skip

# The make_plate layout: samples in duplicate down columns 4–12 (A4/B4, C4/D4, …).
CONCENTRATIONS = (300.0, 120.0, 3000.0, 60.0)  # pg/mL; the third is above the top standard


# --------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------


def four_samples(serum) -> dict[str, float]:
    codes = list(serum.values())[:4]
    return dict(zip(codes, CONCENTRATIONS, strict=True))


def wells_of(plate, barcode: str) -> list[str]:
    return sorted(well for well, content in plate.layout.items() if content == barcode)


def od450_of(plate) -> dict[str, float]:
    """The 450 nm reads of an example plate (its first block, under the metadata)."""
    sheet = openpyxl.load_workbook(io.BytesIO(plate.reader)).active
    return {
        f"{letter}{col}": sheet.cell(row=10 + r, column=col + 2).value
        for r, letter in enumerate(ROWS)
        for col in range(1, 13)
    }


def tecan_xlsx(plate, replaced: dict[str, object]) -> bytes:
    """The plate as a Tecan i-control export: one 450 nm read, "<>" in the corner, the
    reader's metadata above and below, ``replaced`` wells written as the reader would."""
    values = {**od450_of(plate), **replaced}
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Sheet1"
    for line in (
        ["Application: Tecan i-control"],
        ["Device: infinite 200Pro", None, None, None, "Serial number: 1501003137"],
        ["Firmware: V_3.37_07/12_Infinite (Jul 18 2012/10.48.51)"],
        [],
        ["Plate", "Greiner 96 Flat Bottom Transparent Polystyrene [GRE96ft.pdfx]"],
        ["Mode", "Absorbance"],
        ["Measurement Wavelength", 450, "nm"],
        ["Number of Flashes", 25],
        [],
        ["Start Time:", "06/12/2026 09:41:12"],
        [],
    ):
        sheet.append(line)
    top = 12
    sheet.cell(row=top, column=1, value="<>")
    for col in range(1, 13):
        sheet.cell(row=top, column=col + 1, value=col)
    for r, letter in enumerate(ROWS):
        sheet.cell(row=top + 1 + r, column=1, value=letter)
        for col in range(1, 13):
            value = values[f"{letter}{col}"]
            if value is not None:
                sheet.cell(row=top + 1 + r, column=col + 1, value=value)
    sheet.cell(row=top + 10, column=1, value="End Time:")
    sheet.cell(row=top + 10, column=2, value="06/12/2026 09:41:40")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def blocks_xlsx(plate, replaced: dict[str, object]) -> bytes:
    """The example plate's own reader file (450 and 540 nm reads) with ``replaced`` wells
    of the 450 nm read."""
    book = openpyxl.load_workbook(io.BytesIO(plate.reader))
    sheet = book.active
    for well, value in replaced.items():
        cell = sheet.cell(row=10 + ROWS.index(well[0]), column=int(well[1:]) + 2)
        cell.value = value
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def preview(reader: bytes, plate, name="tecan.xlsx", options=None, keep=False):
    return services.preview_plate(
        reader,
        name,
        plate.plate_map,
        "VEGF",
        options or pipeline.Options(),
        keep=keep,
        actor=None,
    )


def by_barcode(data: dict) -> dict[str, dict]:
    return {s["barcode"]: s for s in data["samples"]}


# --------------------------------------------------------------------------
# The reader's markers, recognised in one place
# --------------------------------------------------------------------------


@pytest.mark.parametrize("text", SATURATION_MARKERS)
def test_saturation_markers_of_every_reader_are_recognised(text):
    assert marker(text) == OVERFLOW


@pytest.mark.parametrize("text", NO_READING_MARKERS)
def test_no_reading_markers_are_recognised(text):
    assert marker(text) == UNREADABLE


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_cell_is_empty(text):
    assert marker(text) == EMPTY


@pytest.mark.parametrize("text", ["0.532", "-0.004", "1,5e-3", "high", "pending", "OVERDUE"])
def test_numbers_and_other_words_are_no_marker(text):
    assert marker(text) is None


def test_a_reader_file_with_markers_is_read_not_refused(serum):
    plate = make_plate(four_samples(serum))
    reader = tecan_xlsx(plate, {"A4": "OVER", "B4": "Error", "C4": "#N/A", "D4": "-"})
    [block] = read_reader_file(reader, "tecan.xlsx")
    assert block.anchor == "Sheet1!A12"
    assert [block.wells[w].flag for w in ("A4", "B4", "C4", "D4", "E4")] == [
        OVERFLOW,
        UNREADABLE,
        UNREADABLE,
        UNREADABLE,
        None,
    ]
    assert block.wells["A4"].raw == "OVER" and block.wells["A4"].value is None


def test_an_unknown_word_in_a_well_still_refuses_the_file_naming_the_cell(serum):
    plate = make_plate(four_samples(serum))
    with pytest.raises(ReaderFileError, match=r'cell E13: cannot read "pending"'):
        read_reader_file(tecan_xlsx(plate, {"A4": "pending"}), "tecan.xlsx")


# --------------------------------------------------------------------------
# Samples in the preview
# --------------------------------------------------------------------------


def test_a_sample_over_the_range_in_both_wells_is_above_uloq_not_lost(serum, db):
    truth = four_samples(serum)
    plate = make_plate(truth)
    high = next(iter(truth))
    reader = tecan_xlsx(plate, dict.fromkeys(wells_of(plate, high), "OVER"))

    data = preview(reader, plate).data

    assert [s["barcode"] for s in data["samples"]] == list(truth)  # every sample, in order
    found = by_barcode(data)[high]
    assert (found["status"], found["flag"], found["concentration"]) == (">ULOQ", ">ULOQ", None)
    assert found["limit"] == pytest.approx(1000.0)  # the top standard, pg/mL
    assert found["reason"] == SATURATED and found["known"]
    assert any(p.startswith(f"{high}: >ULOQ (1000 pg/mL) — {SATURATED}") for p in data["problems"])
    # The other samples are untouched.
    for barcode in list(truth)[1:]:
        if truth[barcode] <= 1000:
            assert by_barcode(data)[barcode]["status"] == "quantified"
            assert by_barcode(data)[barcode]["concentration"] == pytest.approx(
                truth[barcode], rel=0.01
            )
            assert by_barcode(data)[barcode]["reason"] == ""


def test_a_diluted_saturated_sample_gives_the_limit_times_its_dilution(serum, db):
    truth = four_samples(serum)
    high = list(truth)[1]
    plate = make_plate(truth, dilutions={high: 4.0})
    reader = tecan_xlsx(plate, dict.fromkeys(wells_of(plate, high), "OVRFLW"))

    found = by_barcode(preview(reader, plate).data)[high]

    assert found["status"] == ">ULOQ" and found["limit"] == pytest.approx(4000.0)
    assert found["dilution"] == 4.0


def test_one_saturated_well_and_one_within_range_is_no_result_never_averaged(serum, db):
    truth = four_samples(serum)
    plate = make_plate(truth)
    sample = next(iter(truth))  # 300 pg/mL: its other well reads well within the range
    first, second = wells_of(plate, sample)
    reader = tecan_xlsx(plate, {first: "OVER"})

    data = preview(reader, plate).data

    found = by_barcode(data)[sample]
    assert found["status"] == "no result"
    assert found["concentration"] is None and found["flag"] is None and found["limit"] is None
    assert found["reason"].startswith(f"replicates disagree: {first} saturated, {second} within")
    assert "dilute and re-assay" in found["reason"]
    assert any(p.startswith(f"{sample}: no result — replicates disagree") for p in data["problems"])


def test_one_saturated_well_and_one_above_the_range_is_above_uloq(serum, db):
    truth = four_samples(serum)
    plate = make_plate(truth)
    sample = list(truth)[2]  # 3000 pg/mL: its other well is above the top standard too
    reader = tecan_xlsx(plate, {wells_of(plate, sample)[0]: "Sat"})

    found = by_barcode(preview(reader, plate).data)[sample]

    assert (found["status"], found["flag"], found["reason"]) == (">ULOQ", ">ULOQ", SATURATED)
    assert found["limit"] == pytest.approx(1000.0) and found["concentration"] is None


def test_an_empty_well_leaves_the_sample_present_with_no_result(serum, db):
    truth = four_samples(serum)
    plate = make_plate(truth)
    sample, both = list(truth)[1], list(truth)[3]
    first, _ = wells_of(plate, sample)
    replaced = {first: None} | dict.fromkeys(wells_of(plate, both), "")

    data = preview(tecan_xlsx(plate, replaced), plate).data

    found = by_barcode(data)[sample]
    assert found["status"] == "no result" and found["concentration"] is None
    assert found["reason"] == (
        f"no reading: {first} empty in the file (1 of 2 replicates read) — re-assay"
    )
    none = by_barcode(data)[both]
    assert none["status"] == "no result" and none["concentration"] is None
    assert none["reason"].startswith("no reading: ") and "empty in the file" in none["reason"]
    assert any(p.startswith(f"{sample}: no result — no reading") for p in data["problems"])


def test_a_well_without_a_reading_names_what_the_reader_wrote(serum, db):
    truth = four_samples(serum)
    plate = make_plate(truth)
    sample = next(iter(truth))
    first, second = wells_of(plate, sample)

    found = by_barcode(preview(tecan_xlsx(plate, {first: "Error", second: "#N/A"}), plate).data)[
        sample
    ]

    assert found["status"] == "no result"
    assert found["reason"] == (
        f"no reading: {first} without a reading (Error), {second} without a reading (#N/A)"
    )


@pytest.mark.parametrize("text", SATURATION_MARKERS)
def test_every_saturation_marker_makes_the_sample_above_uloq(serum, db, text):
    truth = four_samples(serum)
    plate = make_plate(truth)
    sample = next(iter(truth))
    reader = blocks_xlsx(plate, dict.fromkeys(wells_of(plate, sample), text))

    data = preview(reader, plate, "reader.xlsx", pipeline.Options(read=450, reference=540)).data

    found = by_barcode(data)[sample]
    assert (found["status"], found["reason"]) == (">ULOQ", SATURATED)
    assert found["limit"] == pytest.approx(1000.0)


@pytest.mark.parametrize("text", NO_READING_MARKERS)
def test_every_no_reading_marker_gives_no_result_with_the_reason(serum, db, text):
    truth = four_samples(serum)
    plate = make_plate(truth)
    sample = next(iter(truth))
    reader = blocks_xlsx(plate, dict.fromkeys(wells_of(plate, sample), text))

    data = preview(reader, plate, "reader.xlsx", pipeline.Options(read=450, reference=540)).data

    found = by_barcode(data)[sample]
    assert found["status"] == "no result" and found["concentration"] is None
    assert "without a reading" in found["reason"]


def test_a_long_list_with_a_saturated_well_keeps_the_sample(serum, db):
    truth = four_samples(serum)
    plate = make_plate(truth)
    sample = next(iter(truth))
    saturated = set(wells_of(plate, sample))
    lines = plate.long_list.decode("utf-8-sig").splitlines()
    lines = [
        f"{line.split(';')[0]};{line.split(';')[1]};OVER"
        if line.split(";")[0] in saturated
        else line
        for line in lines
    ]
    options = pipeline.Options(
        long_list=True, well_column="Position", sample_column="Sample ID", value_column="OD corr"
    )

    data = preview("\n".join(lines).encode(), plate, "lis.csv", options).data

    assert by_barcode(data)[sample]["status"] == ">ULOQ"
    assert len(data["samples"]) == len(truth)


# --------------------------------------------------------------------------
# Standards and blanks
# --------------------------------------------------------------------------


def test_a_saturated_standard_is_left_out_of_the_fit_and_named_not_the_plate_refused(serum, db):
    truth = four_samples(serum)
    plate = make_plate(truth)

    data = preview(tecan_xlsx(plate, {"A1": "OVER", "A2": "OVER"}), plate).data

    assert (
        "standard STD1, well A1 over the reader's range (OVER): left out of the fit"
        in (data["problems"])
    )
    assert (
        "standard STD1, well A2 over the reader's range (OVER): left out of the fit"
        in (data["problems"])
    )
    assert "STD1" not in {s["name"] for s in data["standards"]}
    assert data["qc"]["uloq"] == pytest.approx(500.0)  # the next standard is now the top
    assert len(data["samples"]) == len(truth)
    found = by_barcode(data)
    assert found[next(iter(truth))]["concentration"] == pytest.approx(300.0, rel=0.02)


def test_one_saturated_standard_well_leaves_its_duplicate_in_the_fit(serum, db):
    plate = make_plate(four_samples(serum))

    data = preview(tecan_xlsx(plate, {"A1": "*****"}), plate).data

    assert (
        "standard STD1, well A1 over the reader's range (*****): left out of the fit"
        in (data["problems"])
    )
    assert "STD1" in {s["name"] for s in data["standards"]}
    assert data["qc"]["uloq"] == pytest.approx(1000.0)


def test_a_saturated_blank_is_a_problem(serum, db):
    plate = make_plate(four_samples(serum))

    one = preview(tecan_xlsx(plate, {"A3": "OVER"}), plate).data
    assert (
        "blank, well A3 over the reader's range (OVER): left out of the blank" in (one["problems"])
    )

    both = services.preview_plate(
        blocks_xlsx(plate, {"A3": "OVER", "B3": "OVER"}),
        "reader.xlsx",
        plate.plate_map,
        "VEGF",
        pipeline.Options(read=450, reference=540),
        keep=False,
        actor=None,
    ).data
    assert (
        "no blank well has a reading: the responses are not blank-subtracted" in (both["problems"])
    )


# --------------------------------------------------------------------------
# Through the API, and kept by the accepted run
# --------------------------------------------------------------------------


def test_the_api_keeps_saturated_and_unread_samples_through_acceptance(
    serum, technician, manager, db
):
    truth = four_samples(serum)
    plate = make_plate(truth)
    saturated, mixed, empty, measured = list(truth)
    replaced = dict.fromkeys(wells_of(plate, saturated), "OVER")
    replaced[wells_of(plate, mixed)[0]] = "OVER"
    replaced[wells_of(plate, empty)[0]] = None
    reader = tecan_xlsx(plate, replaced)
    form = {
        "reader_file": (io.BytesIO(reader), "tecan.xlsx"),
        "plate_map": (io.BytesIO(plate.plate_map), "map.xlsx"),
        "analyte": "VEGF",
        "instrument": "Tecan infinite 200Pro",
    }

    kept = ok(technician.post("/api/v1/assay-runs/plates", data=form), 201)

    found = by_barcode(kept)
    assert set(found) == set(truth)
    assert (found[saturated]["status"], found[saturated]["reason"]) == (">ULOQ", SATURATED)
    assert found[saturated]["limit"] == pytest.approx(1000.0)
    assert found[mixed]["status"] == "no result"
    assert found[mixed]["reason"].startswith("replicates disagree")
    assert found[empty]["status"] == "no result" and "empty" in found[empty]["reason"]
    assert found[measured]["status"] == "quantified"
    run = ok(technician.get(f"/api/v1/assay-runs/{kept['run']}"))
    assert run["preview"]["samples"] == kept["samples"]

    ok(manager.post(f"/api/v1/assay-runs/{kept['run']}/accept"))

    rows = {
        barcode: ok(manager.get(f"/api/v1/aliquots/{barcode}/results"))["items"]
        for barcode in truth
    }
    assert all(len(items) == 1 for items in rows.values())  # a row for every sample
    over = rows[saturated][0]
    assert (over["flag"], over["value"], over["detail"]) == (">ULOQ", None, SATURATED)
    assert over["limit"] == pytest.approx(1000.0) and over["shown"] == "> 1000"
    for barcode in (mixed, empty):
        row = rows[barcode][0]
        assert (row["flag"], row["value"], row["limit"]) == (None, None, None)
        assert row["detail"].startswith("no result — ")
    assert rows[measured][0]["value"] == pytest.approx(truth[measured], rel=0.01)

    results = db.session.execute(sa.select(Result.detail, Result.source)).all()
    assert len(results) == len(truth)
    raw = dict(db.session.execute(sa.select(Well.position, Well.raw)).all())
    assert [raw[well] for well in wells_of(plate, saturated)] == ["OVER", "OVER"]
    assert raw[wells_of(plate, empty)[0]] == ""


def test_the_run_page_shows_a_sample_without_a_result(serum, login_as, db):
    truth = four_samples(serum)
    plate = make_plate(truth)
    empty = list(truth)[3]
    reader = tecan_xlsx(plate, dict.fromkeys(wells_of(plate, empty), "N/A"))
    run = preview(reader, plate, keep=True).run
    db.session.commit()

    manager = login_as("manager")
    page = manager.get(f"/assays/runs/{run.code}")

    assert page.status_code == 200
    assert manager.get(f"/assays/runs/{run.code}/curve.svg").status_code == 200
    text = page.get_data(as_text=True)
    row = text.split(f'data-barcode="{empty}"', 1)[1].split("</tr>", 1)[0]
    assert "no result" in row and "without a reading (N/A)" in row
