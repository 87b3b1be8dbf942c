"""Reader files of other shapes than the example's grid: long lists found by themselves,
reads picked by their wavelength, several reads asked about, and the day the plate was
read taken from the file. Each file is written the way its instrument family writes it,
from the same known curve, and every sample must come back within 3 % of its truth."""

from __future__ import annotations

import io
from datetime import date, datetime

import openpyxl
import pytest

from biobank.assays import pipeline, platemap, platereader, readerdate
from biobank.assays.example import make_plate
from biobank.assays.platereader import ReaderFileError

SAMPLES = {f"S-{n:04d}": c for n, c in enumerate((20.0, 45.0, 90.0, 180.0, 350.0, 700.0), 1)}


@pytest.fixture(scope="module")
def plate():
    return make_plate(SAMPLES)


@pytest.fixture(scope="module")
def reads(plate):
    """The example's 450 nm and 540 nm readings, well by well."""
    od450, od540 = platereader.read_reader_file(plate.reader, "plate.xlsx")
    return (
        {w: r.value for w, r in od450.wells.items() if r.value is not None},
        {w: r.value for w, r in od540.wells.items() if r.value is not None},
    )


def csv(lines: list[list[object]], delimiter: str = ",", comma: bool = False) -> bytes:
    def cell(value):
        text = "" if value is None else str(value)
        return text.replace(".", ",") if comma and isinstance(value, float) else text

    return "\r\n".join(delimiter.join(cell(v) for v in line) for line in lines).encode()


def xlsx(lines: list[list[object]], title: str = "Data") -> bytes:
    book = openpyxl.Workbook()
    book.active.title = title
    for line in lines:
        book.active.append(line)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def concentrations(plate, data: bytes, name: str, **options) -> dict[str, float]:
    result = pipeline.evaluate_file(
        data, name, platemap.read_plate_map(plate.plate_map), pipeline.Options(**options)
    )
    return {s.name: s.concentration for s in result.samples}


def assert_true_curve(plate, found: dict[str, float]) -> None:
    assert set(found) == set(plate.truth)
    for barcode, truth in plate.truth.items():
        assert found[barcode] == pytest.approx(truth, rel=0.03), barcode


def well_order(plate):
    return sorted(plate.layout, key=lambda w: (w[0], int(w[1:])))


# --- long lists, found without being told ----------------------------------------------


def test_well_sample_od450_od540_is_read_450_minus_540_without_a_flag(plate, reads):
    od450, od540 = reads
    lines = [["Well", "Sample", "OD450", "OD540"]] + [
        [w, plate.layout[w], od450[w], od540[w]] for w in well_order(plate)
    ]

    found = concentrations(plate, csv(lines), "export.csv")

    assert_true_curve(plate, found)


def test_well_barcode_450_540_in_a_workbook_under_metadata_with_zero_padded_wells(plate, reads):
    od450, od540 = reads
    lines = [["Instrument", "Multiskan FC"], ["Operator", "lab"], [], ["Well", "Barcode", 450, 540]]
    lines += [
        [f"{w[0]}{int(w[1:]):02d}", plate.layout[w], od450[w], od540[w]] for w in well_order(plate)
    ]

    found = concentrations(plate, xlsx(lines), "export.xlsx", read=450, reference=540)

    assert_true_curve(plate, found)


def test_the_reads_used_are_named_in_the_preview(plate, reads):
    od450, od540 = reads
    lines = [["Well", "Sample", "OD450", "OD540"]] + [
        [w, plate.layout[w], od450[w], od540[w]] for w in well_order(plate)
    ]
    plate_map = platemap.read_plate_map(plate.plate_map)

    result = pipeline.evaluate_file(csv(lines), "x.csv", plate_map, pipeline.Options())

    assert result.preview["reads"] == {"read": "OD450", "reference": "OD540"}


def test_well_position_with_a_well_index_and_a_french_semicolon_export(plate, reads):
    """QuantStudio-like: "Well" numbers the wells 1–96, "Well Position" names them; French
    Excel writes ";" and decimal commas."""
    od450, od540 = reads
    lines = [["Well", "Well Position", "Sample Name", "Abs 450nm", "Abs 540nm"]]
    lines += [
        [n, w, plate.layout[w], od450[w], od540[w]] for n, w in enumerate(well_order(plate), 1)
    ]

    found = concentrations(plate, csv(lines, ";", comma=True), "abs.csv")

    assert_true_curve(plate, found)


def test_one_row_per_well_and_wavelength(plate, reads):
    """Some readers list each well once per wavelength, with a wavelength column."""
    od450, od540 = reads
    lines = [["Well", "Wavelength", "OD"]]
    lines += [[w, 450, od450[w]] for w in well_order(plate)]
    lines += [[w, 540, od540[w]] for w in well_order(plate)]

    blocks = platereader.read_reader_file(csv(lines, "\t"), "tidy.txt")
    found = concentrations(plate, csv(lines, "\t"), "tidy.txt", read=450, reference=540)

    assert [(b.label, b.wavelength_nm) for b in blocks] == [
        ("OD at 450 nm", 450),
        ("OD at 540 nm", 540),
    ]
    assert_true_curve(plate, found)


def test_the_example_laboratory_list_is_found_by_itself(plate):
    found = concentrations(plate, plate.long_list, "lis.csv")

    assert_true_curve(plate, found)


def test_a_list_with_saturated_and_empty_wells_keeps_every_sample(plate, reads):
    od450, od540 = reads
    first, second = sorted(SAMPLES)[:2]
    over = [w for w in well_order(plate) if plate.layout[w] == first]
    empty = [w for w in well_order(plate) if plate.layout[w] == second][:1]
    lines = [["Well", "Sample", "450", "540"]] + [
        [w, plate.layout[w], "OVER" if w in over else ("" if w in empty else od450[w]), od540[w]]
        for w in well_order(plate)
    ]

    result = pipeline.evaluate_file(
        csv(lines), "x.csv", platemap.read_plate_map(plate.plate_map), pipeline.Options()
    )
    status = {s["barcode"]: s["status"] for s in result.preview["samples"]}

    assert status[first] == pipeline.ABOVE
    assert status[second] == pipeline.NO_RESULT
    assert len(status) == len(SAMPLES)


def test_several_value_columns_and_no_read_asks_which_one(plate, reads):
    od450, od540 = reads
    lines = [["Well", "Sample", "Raw", "Corrected", "Conc"]] + [
        [w, plate.layout[w], od450[w], od450[w] - od540[w], 1.0] for w in well_order(plate)
    ]

    with pytest.raises(pipeline.PipelineError, match="say which one is the read") as caught:
        concentrations(plate, csv(lines), "lis.csv")

    assert [(c["number"], c["label"]) for c in caught.value.choices] == [
        (1, "Raw"),
        (2, "Corrected"),
        (3, "Conc"),
    ]
    assert_true_curve(plate, concentrations(plate, csv(lines), "lis.csv", read=2))


def test_a_sample_named_otherwise_in_the_list_is_a_problem(plate, reads):
    od450, od540 = reads
    wells = well_order(plate)
    lines = [["Well", "Sample", "OD450"]] + [
        [w, "SWAPPED" if n == len(wells) - 1 else plate.layout[w], od450[w] - od540[w]]
        for n, w in enumerate(wells)
    ]
    result = pipeline.evaluate_file(
        csv(lines), "x.csv", platemap.read_plate_map(plate.plate_map), pipeline.Options()
    )

    assert any("the file names SWAPPED" in p for p in result.problems)


def test_a_384_well_list_is_refused_naming_the_well():
    lines = [["Well", "OD"]] + [[f"{r}{c}", 0.1] for r in "ABCDEFGHIJ" for c in range(1, 3)]

    with pytest.raises(ReaderFileError, match=r"line 18, column 1 .*well I1 is not on a 96-well"):
        platereader.read_reader_file(csv(lines), "big.csv")


def test_a_well_listed_twice_names_both_places():
    lines = [["Well", "OD"]] + [[f"A{c}", 0.1] for c in range(1, 11)] + [["A3", 0.2]]

    with pytest.raises(ReaderFileError, match=r"well A3 is listed twice \(first at line 4"):
        platereader.read_reader_file(csv(lines), "twice.csv")


def test_a_reading_column_with_a_stray_word_names_its_cell():
    lines = [["Well", "OD450"]] + [[f"B{c}", 0.1 * c] for c in range(1, 12)] + [["B12", "high"]]

    with pytest.raises(ReaderFileError, match=r'line 13, column 2 \(column "OD450"\): cannot read'):
        platereader.read_reader_file(csv(lines), "stray.csv")


def test_a_list_of_wells_without_readings_says_so():
    lines = [["Well", "Sample"]] + [[f"C{c}", f"tube {c}"] for c in range(1, 13)]

    with pytest.raises(ReaderFileError, match=r'no column of readings .*"Sample"'):
        platereader.read_reader_file(csv(lines), "names.csv")


# --- reads by wavelength in grids ---------------------------------------------------------


def test_a_grid_file_with_450_540_and_a_difference_block_uses_450_minus_540(plate):
    """Gen5 adds a "Delta OD 450-540" block: it names two wavelengths and is no 450 read."""
    grids = platereader.read_reader_file(plate.reader, "plate.xlsx")
    assert [b.wavelength_nm for b in grids] == [450, 540]
    blocks = [*grids, platereader.Block("", "Delta OD 450-540", None, "x", grids[0].wells)]

    primary, reference = pipeline.choose_reads(blocks, pipeline.Options())

    assert (primary.wavelength_nm, reference.wavelength_nm) == (450, 540)


# --- the day the plate was read -----------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "day"),
    [
        # Gen5: "Date" and "Time" on their own lines, American when the time says AM/PM.
        ([["Date", "12/3/2026"], ["Time", "10:42:11 AM"]], date(2026, 12, 3)),
        # Gen5 on a French computer: day first is certain (day 29).
        ([["Date", "29/11/2026"], ["Time", "10:42:11"]], date(2026, 11, 29)),
        # A 24-hour clock is no American locale: day first.
        ([["Date", "03/04/2026"], ["Time", "10:42:11"]], date(2026, 4, 3)),
        ([["Start Time:", "06/12/2026 09:41:12"]], date(2026, 12, 6)),
        ([["Date", "03/04/2026"], ["Time", "10:42:11 PM"]], date(2026, 3, 4)),
        # Tecan i-control: "Start Time:" and the date a few cells further, dotted.
        ([["Start Time:", None, None, None, "03.12.2026 10:42:11"]], date(2026, 12, 3)),
        ([["Start Time: 12/3/2026 4:05:00 PM"]], date(2026, 12, 3)),
        ([["Date Read", "2026-12-03 10:42"]], date(2026, 12, 3)),
        ([["Date de mesure :", "3 déc. 2026"]], date(2026, 12, 3)),
        ([["Measurement date:", "December 3, 2026"]], date(2026, 12, 3)),
        ([["Date", datetime(2026, 12, 3, 10, 42)]], date(2026, 12, 3)),
        # A file with both: the start of the read, not the day the export was written.
        ([["Date", "2026-12-05"], ["Start Time:", "2026-12-03 10:00"]], date(2026, 12, 3)),
    ],
)
def test_the_read_date_is_taken_from_the_reader_metadata(rows, day):
    found = readerdate.find([("Results", rows)])

    assert found is not None and found.day == day


def test_a_date_whose_day_and_month_cannot_be_told_apart_offers_both():
    found = readerdate.find([(None, [["Date", "03/04/2026"], ["Operator", "lab"]])])

    assert found.day is None
    assert found.choices == (date(2026, 4, 3), date(2026, 3, 4))
    assert found.place == "line 1"


@pytest.mark.parametrize(
    "rows", [[["Operator", "lab"]], [["Date", "not recorded"]], [["Well", "Date"], ["A1", 1]]]
)
def test_a_file_without_a_read_date_says_none(rows):
    assert readerdate.find([("Results", rows)]) is None


def test_the_example_file_carries_its_read_date(plate):
    found = platereader.read_plate_file(plate.reader, "plate.xlsx").read_on

    assert found.day == date(2026, 11, 29)
    assert found.place == 'sheet "Results", cell B4'


# --- grids of other readers -----------------------------------------------------------------


def softmax_text(od450: dict, od540: dict) -> bytes:
    """SoftMax Pro's plate format: no row letters, the two reads side by side, the
    wavelengths named once on the "Plate:" line, the temperature left of row A, cp1252."""
    tab = "\t"
    header = ["", "Temperature(°C)", *map(str, range(1, 13)), "", *map(str, range(1, 13))]
    lines = [
        "##BLOCKS= 1",
        tab.join(["Plate:", "Plate1", "1.3", "PlateFormat", "Endpoint", "Absorbance", "Raw",
                  "FALSE", "1", "", "", "", "", "", "2", "450 540", "1", "12", "96", "1", "8"]),
        tab.join(header),
    ]  # fmt: skip
    for n, letter in enumerate("ABCDEFGH"):
        row = ["", "22.80" if n == 0 else ""]
        row += [f"{od450.get(f'{letter}{c}', 0.05):.4f}" for c in range(1, 13)] + [""]
        row += [f"{od540.get(f'{letter}{c}', 0.04):.4f}" for c in range(1, 13)]
        lines.append(tab.join(row))
    lines += ["", "~End", "Original Filename: VEGF plate 1; Date Last Saved: 12/3/2026 10:42 AM"]
    return "\r\n".join(lines).encode("cp1252")


def test_a_softmax_pro_export_without_row_letters_reads_its_two_wavelengths(plate, reads):
    data = softmax_text(*reads)

    blocks = platereader.read_reader_file(data, "softmax.txt")
    found = concentrations(plate, data, "softmax.txt")

    assert [(b.label, b.wavelength_nm) for b in blocks] == [("450 nm", 450), ("540 nm", 540)]
    assert_true_curve(plate, found)


def test_a_tecan_grid_with_decimal_commas_markers_and_its_start_time(plate, reads):
    """Magellan-like: "<>" in the corner, "Wavelength: 450 nm" above each block, French
    decimal commas as text, a saturated and an unread well."""
    od450, od540 = reads
    first = sorted(SAMPLES)[-1]
    over = {w for w, c in plate.layout.items() if c == first}
    lines = [["Application:", "Tecan i-control"], ["Start Time:", "", "", "06.12.2026 09:41:12"]]
    for wavelength, values in ((450, od450), (540, od540)):
        lines += [[], [f"Wavelength: {wavelength} nm"], ["<>", *range(1, 13)]]
        for letter in "ABCDEFGH":
            row = [letter]
            for c in range(1, 13):
                well = f"{letter}{c}"
                text = "OVER" if wavelength == 450 and well in over else None
                value = values.get(well)
                row.append(text or ("" if value is None else f"{value:.4f}".replace(".", ",")))
            lines.append(row)
    data = xlsx(lines, "Sheet1")

    result = pipeline.evaluate_file(
        data, "tecan.xlsx", platemap.read_plate_map(plate.plate_map), pipeline.Options()
    )
    found = {s.name: s.concentration for s in result.samples if s.name != first}

    assert result.read_on.day == date(2026, 12, 6)
    assert {s["barcode"]: s["status"] for s in result.preview["samples"]}[first] == ">ULOQ"
    for barcode, concentration in found.items():
        assert concentration == pytest.approx(plate.truth[barcode], rel=0.03)


def test_a_list_flagged_as_such_with_other_column_names_is_still_read(plate, reads):
    od450, od540 = reads
    lines = [["Well", "Sample", "OD450", "OD540"]] + [
        [w, plate.layout[w], od450[w], od540[w]] for w in well_order(plate)
    ]

    found = concentrations(plate, csv(lines), "x.csv", long_list=True, read=450, reference=540)

    assert_true_curve(plate, found)


def test_a_flagged_list_missing_its_named_column_says_which():
    lines = [["Well", "Sample", "Result"], ["A1", "S1", "pending"]]

    with pytest.raises(ReaderFileError, match=r'no "Value" column'):
        pipeline.evaluate_file(
            csv(lines), "x.csv", platemap.read_plate_map(make_plate({}).plate_map),
            pipeline.Options(long_list=True),
        )  # fmt: skip
