"""Tests for biobank.assays.platereader: reader files built in memory, no app, no database."""

from __future__ import annotations

import codecs
import io
import string

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl.utils import get_column_letter

from biobank.assays.platereader import (
    WELLS,
    Block,
    ReaderFileError,
    Reading,
    corrected,
    long_list,
    read_reader_file,
)

# --------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------


def od(well: str) -> float:
    """A distinct value for each well: 0.101 for A1 ... 0.196 for H12."""
    return round(0.1 + (WELLS.index(well) + 1) / 1000, 3)


def put_block(ws, top: int, left: int, values=od, label=None) -> None:
    """Write a block whose top-left header cell is (top, left), 1-based like openpyxl.

    ``values`` maps a well id to what goes into its cell; ``label`` goes just above
    the top-left header.
    """
    if label is not None:
        ws.cell(top - 1, left, label)
    for k in range(1, 13):
        ws.cell(top, left + k, k)
    for i, letter in enumerate("ABCDEFGH"):
        ws.cell(top + 1 + i, left, letter)
        for j in range(12):
            value = values(f"{letter}{j + 1}")
            if value is not None:
                ws.cell(top + 1 + i, left + 1 + j, value)


def workbook(*titles: str) -> openpyxl.Workbook:
    """An empty workbook with sheets of these titles, in order."""
    wb = openpyxl.Workbook()
    wb.active.title = titles[0]
    for title in titles[1:]:
        wb.create_sheet(title)
    return wb


def to_bytes(wb: openpyxl.Workbook) -> bytes:
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def block_lines(delimiter: str, values, *, indent: int = 0, decimal_comma=False) -> list[str]:
    """The 9 text lines of a block, ``indent`` empty fields before its top-left header."""
    pad = [""] * indent

    def show(well):
        text = str(values(well))
        return text.replace(".", ",") if decimal_comma else text

    lines = [delimiter.join([*pad, "", *(str(k) for k in range(1, 13))])]
    for letter in "ABCDEFGH":
        cells = [show(f"{letter}{j}") for j in range(1, 13)]
        lines.append(delimiter.join([*pad, letter, *cells]))
    return lines


def single_block(values) -> Block:
    """Read a one-block workbook whose wells hold ``values(well)``."""
    wb = workbook("Results")
    put_block(wb.active, 1, 1, values)
    [block] = read_reader_file(to_bytes(wb), "plate.xlsx")
    return block


# --------------------------------------------------------------------------
# Blocks in workbooks
# --------------------------------------------------------------------------


def test_wells_are_row_major_a1_to_h12():
    assert len(WELLS) == 96
    assert WELLS[:3] == ("A1", "A2", "A3")
    assert WELLS[11:13] == ("A12", "B1")
    assert WELLS[-1] == "H12"


def test_block_under_ten_lines_of_metadata():
    wb = workbook("Results")
    ws = wb.active
    metadata = [
        ("Software Version", "3.11"),
        ("Experiment File Path:", r"C:\Data\vegf.xpt"),
        ("Plate Number", "Plate 1"),
        ("Date", "2024-05-01"),
        ("Time", "10:32:00"),
        ("Reader Type:", "Synergy H1"),
        ("Reader Serial Number:", "1234567"),
        ("Reading Type", "Reader"),
        ("Temperature", 25.1),
        ("Shake", "Linear: 0:05"),
    ]
    for r, (key, value) in enumerate(metadata, start=1):
        ws.cell(r, 1, key)
        ws.cell(r, 2, value)
    put_block(ws, 13, 2, label="Read 1:450")  # after a blank line, shifted one column

    [block] = read_reader_file(to_bytes(wb), "plate.xlsx")

    assert block.sheet == "Results"
    assert block.anchor == "Results!B13"
    assert block.label == "Read 1:450"
    assert block.wavelength_nm == 450
    assert list(block.wells) == list(WELLS)
    assert block.wells["A1"] == Reading(0.101, None, "0.101", "Results!C14")
    assert block.wells["H12"] == Reading(0.196, None, "0.196", "Results!N21")
    assert all(block.wells[w].value == od(w) for w in WELLS)


def test_two_blocks_side_by_side_labelled_450_and_540():
    wb = workbook("Results")
    put_block(wb.active, 3, 1, label="450")
    put_block(wb.active, 3, 15, values=lambda w: od(w) / 10, label=540)  # a numeric label cell

    blocks = read_reader_file(to_bytes(wb), "plate.xlsx")

    assert [(b.label, b.wavelength_nm, b.anchor) for b in blocks] == [
        ("450", 450, "Results!A3"),
        ("540", 540, "Results!O3"),
    ]
    assert blocks[1].wells["C7"].value == pytest.approx(od("C7") / 10)


def test_blocks_directly_side_by_side_do_not_share_labels():
    wb = workbook("Results")
    put_block(wb.active, 2, 1, label="Wavelength: 450 nm")
    put_block(wb.active, 2, 14)  # no gap column, no label of its own

    blocks = read_reader_file(to_bytes(wb), "plate.xlsx")

    assert [(b.anchor, b.label) for b in blocks] == [
        ("Results!A2", "Wavelength: 450 nm"),
        ("Results!N2", ""),
    ]


def test_stacked_blocks_in_reading_order_without_borrowing_labels():
    wb = workbook("Results")
    put_block(wb.active, 2, 1, label="Wavelength: 540 nm")
    put_block(wb.active, 12, 1)  # one blank row under the first block, no label

    blocks = read_reader_file(to_bytes(wb), "plate.xlsx")

    assert [(b.anchor, b.label, b.wavelength_nm) for b in blocks] == [
        ("Results!A2", "Wavelength: 540 nm", 540),
        ("Results!A12", "", None),
    ]


def test_plates_on_two_sheets_come_in_sheet_order():
    wb = workbook("Plate 1", "Plate 2")
    put_block(wb["Plate 1"], 4, 1, label="Plate 1")
    put_block(wb["Plate 2"], 2, 3, values=lambda w: od(w) + 1, label="Plate 2")

    blocks = read_reader_file(to_bytes(wb), "plates.xlsx")

    assert [(b.sheet, b.label, b.wavelength_nm, b.anchor) for b in blocks] == [
        ("Plate 1", "Plate 1", None, "Plate 1!A4"),
        ("Plate 2", "Plate 2", None, "Plate 2!C2"),
    ]
    assert blocks[1].wells["B2"].value == pytest.approx(od("B2") + 1)
    assert blocks[1].wells["B2"].cell == "Plate 2!E4"


def test_label_in_the_top_left_header_cell_and_placeholder_corner():
    wb = workbook("Results")
    ws = wb.active
    put_block(ws, 3, 1)
    ws["A3"] = "570"  # the corner cell itself names the wavelength
    put_block(ws, 3, 15, label="Plate 2")
    ws["O3"] = "<>"  # Gen5's corner: punctuation, not a label

    blocks = read_reader_file(to_bytes(wb), "plate.xlsx")

    assert [(b.label, b.wavelength_nm) for b in blocks] == [("570", 570), ("Plate 2", None)]


@pytest.mark.parametrize(
    ("label", "wavelength"),
    [
        ("450", 450),
        ("Wavelength: 540 nm", 540),
        ("Read 2:570", 570),
        ("OD450-OD570", 450),
        ("Plate 2", None),
        ("2024-05-01 run", None),
        ("300 nm", None),
        ("Abs 1000", None),
        ("OD 0.450", None),
    ],
)
def test_wavelength_is_a_three_digit_number_from_340_to_999_in_the_label(label, wavelength):
    wb = workbook("Results")
    put_block(wb.active, 2, 1, label=label)

    [block] = read_reader_file(to_bytes(wb), "plate.xlsx")

    assert (block.label, block.wavelength_nm) == (label, wavelength)


def test_header_numbers_as_floats_and_text():
    wb = workbook("Results")
    ws = wb.active
    put_block(ws, 1, 1)
    for k in range(1, 13):
        ws.cell(1, 1 + k, [float(k), str(k), f"{k:02d}"][k % 3])
    ws["A5"] = " d "  # lower-case row letter with spaces

    [block] = read_reader_file(to_bytes(wb), "plate.xlsx")

    assert block.wells["D12"].value == od("D12")


def test_numbers_as_text_decimal_commas_and_scientific_notation():
    cells = {
        "A1": "0.123",
        "A2": "0,123",
        "A3": "  0.5  ",
        "A4": "1.2E-02",
        "A5": -0.004,
        "A6": "-0,010",
        "A7": 1,
        "A8": "1,5e-3",
        "A9": ".25",
        "A10": "+2",
        "A11": "3,",
        "A12": "\u22120.02",  # a typographic minus sign
    }

    block = single_block(lambda w: cells.get(w, 0.1))

    assert {w: block.wells[w].value for w in cells} == {
        "A1": 0.123,
        "A2": 0.123,
        "A3": 0.5,
        "A4": 0.012,
        "A5": -0.004,
        "A6": -0.01,
        "A7": 1.0,
        "A8": 0.0015,
        "A9": 0.25,
        "A10": 2.0,
        "A11": 3.0,
        "A12": -0.02,
    }
    assert all(block.wells[w].flag is None for w in cells)
    assert block.wells["A3"].raw == "0.5"
    assert block.wells["A2"].raw == "0,123"


@pytest.mark.parametrize(
    "marker",
    ["OVRFLW", "Overflow", "OVER", "over", "*", "*****", ">4.000", "> 3.5", "> 3,5", " OVRFLW "],
)
def test_overflow_markers(marker):
    block = single_block(lambda w: marker if w == "E5" else 0.2)

    assert block.wells["E5"] == Reading(None, "overflow", marker.strip(), "Results!F6")
    assert block.wells["E6"].flag is None


@pytest.mark.parametrize("content", [None, "", "   "])
def test_empty_wells(content):
    block = single_block(lambda w: content if w.startswith("H") else 0.2)

    assert block.wells["H7"] == Reading(None, "empty", "", "Results!H9")
    assert block.wells["G7"].value == 0.2


# --------------------------------------------------------------------------
# Blocks in text files
# --------------------------------------------------------------------------


def test_french_semicolon_csv_with_bom_and_decimal_commas():
    lines = [
        "Lecteur;Multiskan FC",
        "Date;01/02/2024;10:32",
        "",
        "Longueur d'onde : 450 nm",
        *block_lines(";", od, decimal_comma=True),
        "",
    ]
    data = codecs.BOM_UTF8 + "\r\n".join(lines).encode("utf-8")

    [block] = read_reader_file(data, "export.csv")

    assert block.sheet == ""
    assert block.label == "Longueur d'onde : 450 nm"
    assert block.wavelength_nm == 450
    assert block.anchor == "line 5, column 1"
    assert block.wells["A1"] == Reading(0.101, None, "0,101", "line 6, column 2")
    assert all(block.wells[w].value == od(w) for w in WELLS)


def test_cp1252_csv_with_micro_sign_in_metadata():
    lines = ["Reader,Sunrise", "Sample volume: 100 µL", *block_lines(",", od, indent=2)]
    data = "\n".join(lines).encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the point of the test: not UTF-8

    [block] = read_reader_file(data, "export.CSV")

    assert block.label == "Sample volume: 100 µL"
    assert block.anchor == "line 3, column 3"
    assert block.wells["H12"].value == od("H12")


def test_tab_separated_txt_with_two_blocks_and_decimal_commas():
    lines = [
        "450\t\t\t\t\t\t\t\t\t\t\t\t\t\t570",
        *(
            f"{left}\t\t{right}"
            for left, right in zip(
                block_lines("\t", od, decimal_comma=True),
                block_lines("\t", lambda w: od(w) / 2, decimal_comma=True),
                strict=True,
            )
        ),
    ]

    blocks = read_reader_file("\n".join(lines).encode(), "export.txt")

    assert [(b.wavelength_nm, b.anchor) for b in blocks] == [
        (450, "line 2, column 1"),
        (570, "line 2, column 15"),
    ]
    assert blocks[1].wells["B3"].value == pytest.approx(od("B3") / 2)


# --------------------------------------------------------------------------
# Errors name the place
# --------------------------------------------------------------------------


def test_non_numeric_value_names_sheet_and_cell():
    wb = workbook("Summary", "Results")
    put_block(wb["Results"], 5, 2, values=lambda w: "abc" if w == "H10" else 0.1)

    with pytest.raises(ReaderFileError, match=r'^sheet "Results", cell L13: cannot read "abc"'):
        read_reader_file(to_bytes(wb), "plate.xlsx")


def test_non_numeric_value_in_csv_names_line_and_column():
    # "n/a" is a reader's no-reading marker (see test_saturation.py); "pending" is no marker.
    lines = ["Plate 1", "", *block_lines(",", lambda w: "pending" if w == "B2" else 0.3)]

    with pytest.raises(ReaderFileError, match=r'^line 5, column 3: cannot read "pending"'):
        read_reader_file("\n".join(lines).encode(), "plate.csv")


def test_missing_row_letter_names_the_cell():
    wb = workbook("Results")
    put_block(wb.active, 3, 2)
    wb.active["B8"] = None  # where "E" belongs

    with pytest.raises(
        ReaderFileError,
        match=r'^sheet "Results", cell B8: expected row letter E .* found an empty cell',
    ):
        read_reader_file(to_bytes(wb), "plate.xlsx")


def test_wrong_row_letter_names_the_cell():
    wb = workbook("Results")
    put_block(wb.active, 1, 1)
    wb.active["A3"] = "X"

    with pytest.raises(ReaderFileError, match=r'cell A3: expected row letter B .* found "X"'):
        read_reader_file(to_bytes(wb), "plate.xlsx")


def test_no_block_at_all():
    wb = workbook("Results", "Log")
    wb.active["A1"] = "Nothing here"

    with pytest.raises(
        ReaderFileError,
        match=r"^plate\.xlsx: no 8 × 12 block with A–H / 1–12 headers and no list with one row "
        r"per well .* was found",
    ):
        read_reader_file(to_bytes(wb), "plate.xlsx")

    with pytest.raises(ReaderFileError, match="no 8 × 12 block"):
        read_reader_file(b"just,some\ntext,here\n", "plate.csv")


def test_a_384_well_plate_is_refused():
    wb = workbook("Results")
    put_block(wb.active, 1, 1)
    wb.active["N1"] = 13

    with pytest.raises(ReaderFileError, match=r"cell N1: .*only 96-well"):
        read_reader_file(to_bytes(wb), "plate.xlsx")


def test_unreadable_files():
    with pytest.raises(ReaderFileError, match=r"^plate\.xlsx: not a readable \.xlsx workbook"):
        read_reader_file(b"not a zip file", "plate.xlsx")
    with pytest.raises(ReaderFileError, match=r"\.xls format"):
        read_reader_file(b"\xd0\xcf\x11\xe0", "plate.xls")
    with pytest.raises(ReaderFileError, match=r"expected an \.xlsx, \.csv or \.txt file"):
        read_reader_file(b"", "plate.pdf")


# --------------------------------------------------------------------------
# Wavelength correction
# --------------------------------------------------------------------------


def block_of(readings: dict[str, Reading], label: str = "") -> Block:
    """A block with the given readings and 0.1 everywhere else."""
    wells = {w: readings.get(w, Reading(0.1, None, "0.1", f"Results!{w}")) for w in WELLS}
    return Block("Results", label, None, "Results!A1", wells)


def test_corrected_subtracts_the_reference_well_by_well():
    primary = block_of(
        {
            "A1": Reading(0.5, None, "0.500", "Results!B2"),
            "A2": Reading(None, "overflow", "OVRFLW", "Results!C2"),
            "A3": Reading(1.0, None, "1.000", "Results!D2"),
            "A4": Reading(None, "empty", "", "Results!E2"),
            "A5": Reading(None, "empty", "", "Results!F2"),
            "A6": Reading(0.02, None, "0.020", "Results!G2"),
        }
    )
    reference = block_of(
        {
            "A1": Reading(0.05, None, "0.050", "Results!P2"),
            "A3": Reading(None, "overflow", "*****", "Results!R2"),
            "A4": Reading(0.04, None, "0.040", "Results!S2"),
            "A5": Reading(None, "overflow", ">4.000", "Results!T2"),
            "A6": Reading(0.05, None, "0.050", "Results!U2"),
        }
    )

    result = corrected(primary, reference)

    assert list(result) == list(WELLS)
    assert result["A1"].value == pytest.approx(0.45)
    assert (result["A1"].flag, result["A1"].raw, result["A1"].cell) == (
        None,
        "0.500-0.050",
        "Results!B2",
    )
    assert (result["A2"].value, result["A2"].flag) == (None, "overflow")
    assert (result["A3"].value, result["A3"].flag) == (None, "overflow")
    assert (result["A4"].value, result["A4"].flag, result["A4"].cell) == (
        None,
        "empty",
        "Results!E2",
    )
    assert (result["A5"].value, result["A5"].flag) == (None, "overflow")  # overflow beats empty
    assert result["A6"].value == pytest.approx(-0.03)  # negative after correction is kept
    assert result["H12"].value == pytest.approx(0.0)


def test_corrected_without_reference_is_the_primary():
    primary = single_block(lambda w: "OVRFLW" if w == "A1" else od(w))

    assert corrected(primary, None) == primary.wells


def test_corrected_on_blocks_read_from_a_file():
    wb = workbook("Results")
    put_block(wb.active, 2, 1, values=lambda w: od(w) + 0.5, label="450")
    put_block(wb.active, 2, 15, values=lambda w: 0.5, label="570")
    od450, od570 = read_reader_file(to_bytes(wb), "plate.xlsx")

    result = corrected(od450, od570)

    assert all(result[w].value == pytest.approx(od(w)) for w in WELLS)


# --------------------------------------------------------------------------
# Long lists (LIS exports)
# --------------------------------------------------------------------------


def long_list_workbook(rows: list[list[object]], title: str = "Export") -> bytes:
    wb = workbook(title, "Other")
    for row in rows:
        wb[title].append(row)
    wb["Other"].append(["Well", "Sample", "Value"])  # only the first sheet counts
    return to_bytes(wb)


def test_long_list_with_custom_column_names():
    data = long_list_workbook(
        [
            ["VEGF ELISA run 12"],
            ["Operator", "jdoe"],
            [],
            ["Barcode", "of the kit"],  # one name alone is metadata, not the header
            [None, " position ", "BARCODE", "Comment", "OD450 "],
            [None, "A01", "S-0001", "", 0.123],
            [None, "a2", "S-0002", "rerun", "0,456"],
            [None, "B12", None, None, "OVRFLW"],
            [],
            [None, None, None, "total 4"],  # a note outside the configured columns
            [None, "H1", 12345, None, None],
        ]
    )

    readings, samples, _read_on = long_list(
        data, "lis.xlsx", well_column="Position", sample_column="barcode", value_column="od450"
    )

    assert readings == {
        "A1": Reading(0.123, None, "0.123", "Export!E6"),
        "A2": Reading(0.456, None, "0,456", "Export!E7"),
        "B12": Reading(None, "overflow", "OVRFLW", "Export!E8"),
        "H1": Reading(None, "empty", "", "Export!E11"),
    }
    assert samples == {"A1": "S-0001", "A2": "S-0002", "B12": "", "H1": "12345"}


def test_long_list_french_csv_with_default_columns():
    text = "Export LIS;2024-05-01\r\n\r\nWell;Sample;Value\r\nA1;P-01;0,5\r\nC03;P-02;-0,01\r\n"

    readings, samples, _read_on = long_list(codecs.BOM_UTF8 + text.encode(), "lis.csv")

    assert readings == {
        "A1": Reading(0.5, None, "0,5", "line 4, column 3"),
        "C3": Reading(-0.01, None, "-0,01", "line 5, column 3"),
    }
    assert samples == {"A1": "P-01", "C3": "P-02"}


def test_long_list_well_listed_twice():
    data = long_list_workbook(
        [["Position", "Barcode", "OD"], ["A1", "S1", 0.1], ["B1", "S2", 0.2], ["A01", "S3", 0.3]]
    )

    with pytest.raises(
        ReaderFileError,
        match=r'^sheet "Export", cell A4 \(column "Position"\): well A1 is listed twice '
        r"\(first at Export!A2\)",
    ):
        long_list(
            data, "lis.xlsx", well_column="Position", sample_column="Barcode", value_column="OD"
        )


@pytest.mark.parametrize("well", ["I1", "A13", "A0", "1", "Std 1", None])
def test_long_list_unknown_well_id(well):
    data = long_list_workbook([["Well", "Sample", "Value"], ["A1", "S1", 0.1], [well, "S2", 0.2]])

    with pytest.raises(
        ReaderFileError, match=r'^sheet "Export", cell A3 \(column "Well"\): .*well id'
    ):
        long_list(data, "lis.xlsx")


def test_long_list_bad_value_names_cell_and_column():
    text = "Well,Sample,OD\nA1,S1,0.1\nA2,S2,high\n"

    with pytest.raises(
        ReaderFileError, match=r'^line 3, column 3 \(column "OD"\): cannot read "high"'
    ):
        long_list(text.encode(), "lis.csv", value_column="OD")


def test_long_list_missing_column():
    data = long_list_workbook([["Title"], ["Well", "Sample", "Result"], ["A1", "S1", 0.1]])

    with pytest.raises(
        ReaderFileError, match=r'^sheet "Export", row 2: the header row has no "Value" column'
    ):
        long_list(data, "lis.xlsx")


def test_long_list_header_must_be_in_the_first_30_rows():
    rows = [[f"note {n}"] for n in range(30)] + [["Well", "Sample", "Value"], ["A1", "S", 1]]

    with pytest.raises(ReaderFileError, match=r'^sheet "Export": no header row .* first 30 rows'):
        long_list(long_list_workbook(rows), "lis.xlsx")


# --------------------------------------------------------------------------
# Round trip wherever the block sits
# --------------------------------------------------------------------------

# openpyxl stores floats with 16 significant digits ("%.16g"), which does not
# always give back the same double; values with 15 significant digits always do.
values_15_digits = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False).map(
    lambda v: float(f"{v:.15g}")
)
metadata_text = st.text(alphabet=string.ascii_letters + string.digits + " :_/()µ°", max_size=24)


@given(
    row_offset=st.integers(0, 20),
    col_offset=st.integers(0, 8),
    values=st.lists(values_15_digits, min_size=96, max_size=96),
    form=st.sampled_from(["xlsx numbers", "xlsx text with decimal commas", "csv ; with commas"]),
    data=st.data(),
)
def test_round_trip_anywhere(row_offset, col_offset, values, form, data):
    metadata = data.draw(
        st.lists(st.lists(metadata_text, max_size=4), min_size=row_offset, max_size=row_offset),
        label="metadata rows",
    )
    by_well = dict(zip(WELLS, values, strict=True))

    def comma_text(well):
        return repr(by_well[well]).replace(".", ",")

    if form.startswith("xlsx"):
        wb = workbook("Results")
        for r, row in enumerate(metadata, start=1):
            for c, text in enumerate(row, start=1):
                wb.active.cell(r, c, text)
        put_block(
            wb.active,
            row_offset + 1,
            col_offset + 1,
            values=by_well.get if form == "xlsx numbers" else comma_text,
        )
        blocks = read_reader_file(to_bytes(wb), "plate.xlsx")
        anchor = f"Results!{get_column_letter(col_offset + 1)}{row_offset + 1}"
    else:
        lines = [";".join(row) for row in metadata]
        lines += block_lines(";", comma_text, indent=col_offset)
        blocks = read_reader_file("\n".join(lines).encode("utf-8"), "plate.csv")
        anchor = f"line {row_offset + 1}, column {col_offset + 1}"

    [block] = blocks
    assert block.anchor == anchor
    assert {w: (r.value, r.flag) for w, r in block.wells.items()} == {
        w: (v, None) for w, v in by_well.items()
    }
