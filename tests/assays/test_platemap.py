"""Plate maps: the xlsx form, its round trip, its errors, and layout templates."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from biobank.assays.platemap import (
    ROWS,
    WELLS,
    Control,
    LayoutTemplate,
    PlateMap,
    PlateMapError,
    Standard,
    lay_out,
    load_layout_templates,
    read_plate_map,
    write_plate_map,
)

VEGF = "vegf-elisa-7pt"
GENERIC = "generic-6pt"


@pytest.fixture(scope="module")
def templates() -> dict[str, LayoutTemplate]:
    return load_layout_templates()


@pytest.fixture
def vegf(templates) -> LayoutTemplate:
    return templates[VEGF]


def small_plate() -> PlateMap:
    return PlateMap(
        wells={
            "A1": "STD1",
            "B1": "STD1",
            "C1": "STD2",
            "D1": "STD2",
            "E1": "BLANK",
            "F1": "CTRL-L",
            "A2": "7KQ3M9XW4",
            "B2": "7KQ3M9XW4",
            "C2": "P2X7ZZ9Q1",
        },
        standards=(Standard("STD1", 1000.0, "pg/mL"), Standard("STD2", 0.0, "pg/mL")),
        dilutions={"7KQ3M9XW4": 4.0},
        controls=(Control("CTRL-L", 90.0, 150.0),),
    )


def edited(data: bytes, change: Callable[[Workbook], None]) -> bytes:
    """Open a written plate map as a person would, change it, save it."""
    workbook = load_workbook(io.BytesIO(data))
    change(workbook)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def error_of(data: bytes) -> str:
    with pytest.raises(PlateMapError) as caught:
        read_plate_map(data)
    return str(caught.value)


# --------------------------------------------------------------------------- constants


def test_wells_run_row_major_from_a1_to_h12():
    assert ROWS == "ABCDEFGH"
    assert len(WELLS) == 96
    assert WELLS[:3] == ("A1", "A2", "A3")
    assert WELLS[11:13] == ("A12", "B1")
    assert WELLS[-1] == "H12"


# --------------------------------------------------------------------------- PlateMap


def test_groups_list_each_content_with_its_wells_in_wells_order():
    plate = small_plate()
    groups = plate.groups()
    assert groups["STD1"] == ["A1", "B1"]
    assert groups["7KQ3M9XW4"] == ["A2", "B2"]
    assert list(groups)[:3] == ["STD1", "7KQ3M9XW4", "STD2"]


def test_kind_classifies_standards_blanks_controls_and_samples():
    plate = small_plate()
    assert [plate.kind(c) for c in ("STD1", "STD12", "BLANK", "CTRL-L", "CTRL-H", "7KQ3M9XW4")] == [
        "standard",
        "standard",
        "blank",
        "control",
        "control",
        "sample",
    ]
    # Generated barcodes may start with STD or CTRL; only the reserved forms are not samples.
    assert plate.kind("STDK4M2N9") == "sample"
    assert plate.kind("CTRLABCDE") == "sample"


def test_samples_come_in_first_well_order():
    assert small_plate().samples() == ["7KQ3M9XW4", "P2X7ZZ9Q1"]


def test_numbers_are_kept_to_the_16_digits_a_workbook_holds():
    assert Standard("STD1", 0.1 + 0.2, "pg/mL") == Standard("STD1", 0.3, "pg/mL")
    assert Control("CTRL-L", 1, None).low == 1.0
    assert PlateMap({"A1": "X1"}, (), {"X1": 2 / 3}).dilutions == {"X1": 0.6666666666666666}


def test_a_dilution_of_one_is_the_same_as_no_dilution():
    a = PlateMap({"A1": "X1"}, (), {"X1": 1.0})
    b = PlateMap({"A1": "X1"}, (), {})
    assert a == b
    assert a.dilutions == {}


# --------------------------------------------------------------------------- templates


def test_bundled_templates_load_by_file_name(templates):
    assert {VEGF, GENERIC} <= set(templates)
    assert templates[VEGF].name == VEGF


def test_vegf_template_declares_the_quantikine_curve_in_duplicate(vegf):
    assert vegf.unit == "pg/mL"
    assert [s.name for s in vegf.standards] == [f"STD{i}" for i in range(1, 9)]
    assert [s.concentration for s in vegf.standards] == [
        1000,
        500,
        250,
        125,
        62.5,
        31.3,
        15.6,
        0,
    ]
    assert {s.unit for s in vegf.standards} == {"pg/mL"}
    assert vegf.standard_replicates == 2
    assert vegf.blanks == 2
    assert [c.name for c in vegf.controls] == ["CTRL-L", "CTRL-H"]
    for control in vegf.controls:
        assert control.low is not None and control.high is not None
        assert 0 <= control.low < control.high
    assert vegf.control_replicates == 2
    assert vegf.sample_replicates == 2
    assert vegf.direction == "columns"
    assert vegf.description


def test_vegf_template_holds_37_samples_in_duplicate(vegf):
    fixed = 8 * 2 + 2 + 2 * 2  # standards, blanks, controls
    assert fixed == 22
    assert vegf.sample_capacity == (96 - fixed) // 2 == 37


def test_generic_template_has_six_standards_a_zero_and_no_controls(templates):
    generic = templates[GENERIC]
    assert len(generic.standards) == 7
    assert generic.standards[-1].concentration == 0
    assert all(s.concentration > 0 for s in generic.standards[:-1])
    assert generic.controls == ()
    assert generic.standard_replicates == 2
    assert generic.sample_capacity == (96 - 7 * 2 - generic.blanks) // 2


def test_templates_load_from_another_folder_keyed_by_file_name(tmp_path):
    (tmp_path / "mine.toml").write_text(
        'description = "x"\nunit = "ng/mL"\nstandards = [10, 5, 2.5]\ndirection = "rows"\n'
    )
    (tmp_path / "notes.txt").write_text("not a template")
    loaded = load_layout_templates(tmp_path)
    assert list(loaded) == ["mine"]
    mine = loaded["mine"]
    assert mine.standards == (
        Standard("STD1", 10.0, "ng/mL"),
        Standard("STD2", 5.0, "ng/mL"),
        Standard("STD3", 2.5, "ng/mL"),
    )
    assert (mine.standard_replicates, mine.blanks, mine.sample_replicates) == (2, 0, 2)
    assert mine.direction == "rows"


VALID = 'description = "x"\nunit = "pg/mL"\nstandards = [100, 10, 0]\n'


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("description = \n", ["not valid TOML", "line 1"]),
        (VALID + "blank = 2\n", ["blank", "unknown key"]),
        ('unit = "pg/mL"\nstandards = [1]\n', ["description", "missing"]),
        (VALID.replace("[100, 10, 0]", '["100"]'), ["standards", "list of concentrations"]),
        (VALID + 'direction = "diagonal"\n', ["direction", "'diagonal'"]),
        (VALID + "sample_replicates = 0\n", ["sample_replicates", "≥ 1"]),
        (VALID + "blanks = 1.5\n", ["blanks", "whole number"]),
        (VALID.replace("[100, 10, 0]", "[100, 10, 50]"), ["standards", "strictly decreasing"]),
        (VALID.replace("[100, 10, 0]", "[100, -10]"), ["standards", "STD2", "≥ 0"]),
        (VALID + '[[controls]]\nname = "LOW"\n', ["controls", "'LOW'", "control name"]),
        (VALID + '[[controls]]\nname = "CTRL-L"\nlow = 5\nhigh = 3\n', ["CTRL-L", "low 5"]),
        (VALID + '[[controls]]\nname = "CTRL-L"\nlow = "5"\n', ["[[controls]] #1", "low"]),
        (VALID + '[[controls]]\nname = "CTRL-L"\nrange = 5\n', ["[[controls]] #1", "range"]),
        (VALID + "[[controls]]\nlow = 5\n", ["[[controls]] #1", "name"]),
        (
            VALID + '[[controls]]\nname = "CTRL-L"\n[[controls]]\nname = "CTRL-L"\n',
            ["'CTRL-L'", "declared twice"],
        ),
        (VALID + "standard_replicates = 40\n", ["standards, blanks, controls", "120"]),
    ],
)
def test_template_errors_name_the_file_and_the_key(tmp_path, text, fragments):
    (tmp_path / "bad-kit.toml").write_text(text)
    with pytest.raises(PlateMapError) as caught:
        load_layout_templates(tmp_path)
    message = str(caught.value)
    assert "bad-kit.toml" in message
    for fragment in fragments:
        assert fragment in message


def test_a_missing_template_folder_is_an_error(tmp_path):
    with pytest.raises(PlateMapError, match="no such folder"):
        load_layout_templates(tmp_path / "absent")


def test_a_template_built_in_code_is_validated_too():
    with pytest.raises(PlateMapError, match="direction"):
        LayoutTemplate("t", "d", "pg/mL", (Standard("STD1", 1.0, "pg/mL"),), direction="spiral")


# --------------------------------------------------------------------------- lay_out


def test_lay_out_fills_standards_blanks_controls_then_samples_down_the_columns(vegf):
    plate = lay_out(vegf, [("aaaa2", 1), ("BBBB3", 2), ("CCCC4", 1)])
    expected = {
        "A1": "STD1",
        "B1": "STD1",
        "C1": "STD2",
        "D1": "STD2",
        "E1": "STD3",
        "F1": "STD3",
        "G1": "STD4",
        "H1": "STD4",
        "A2": "STD5",
        "B2": "STD5",
        "G2": "STD8",
        "H2": "STD8",
        "A3": "BLANK",
        "B3": "BLANK",
        "C3": "CTRL-L",
        "D3": "CTRL-L",
        "E3": "CTRL-H",
        "F3": "CTRL-H",
        "G3": "AAAA2",
        "H3": "AAAA2",
        "A4": "BBBB3",
        "B4": "BBBB3",
        "C4": "CCCC4",
        "D4": "CCCC4",
    }
    for well, content in expected.items():
        assert plate.wells[well] == content, well
    assert len(plate.wells) == 22 + 3 * 2
    assert "E4" not in plate.wells
    assert plate.standards == vegf.standards
    assert plate.controls == vegf.controls
    assert plate.dilutions == {"BBBB3": 2.0}


def test_lay_out_by_rows_puts_replicates_side_by_side():
    template = LayoutTemplate(
        "rows",
        "d",
        "pg/mL",
        tuple(Standard(f"STD{i}", 100.0 / i, "pg/mL") for i in range(1, 7)),
        standard_replicates=3,
        blanks=1,
        direction="rows",
    )
    plate = lay_out(template, [("S1X", 1)])
    assert [plate.wells[w] for w in ("A1", "A2", "A3", "A4")] == ["STD1"] * 3 + ["STD2"]
    assert plate.wells["A12"] == "STD4"
    assert plate.wells["B6"] == "STD6"
    assert plate.wells["B7"] == "BLANK"
    assert plate.groups()["S1X"] == ["B8", "B9"]


def test_lay_out_is_deterministic(vegf):
    samples = [(f"S{i:03d}X", 1 + i % 3) for i in range(30)]
    assert lay_out(vegf, samples) == lay_out(vegf, samples)
    assert list(lay_out(vegf, samples).wells) == list(lay_out(vegf, samples).wells)


def test_a_full_vegf_plate_uses_every_well(vegf):
    plate = lay_out(vegf, [(f"S{i:03d}X", 1) for i in range(37)])
    assert set(plate.wells) == set(WELLS)
    assert plate.groups()["S036X"] == ["G12", "H12"]


def test_too_many_samples_say_how_many_fit(vegf):
    with pytest.raises(PlateMapError) as caught:
        lay_out(vegf, [(f"S{i:03d}X", 1) for i in range(38)])
    message = str(caught.value)
    assert "38 samples" in message
    assert "at most 37" in message


@pytest.mark.parametrize(
    ("samples", "fragment"),
    [
        ([("AB12X", 1), ("ab12x", 2)], "also sample 1"),
        ([("STD1", 1)], "not a sample barcode"),
        ([("BLANK", 1)], "not a sample barcode"),
        ([("AB 12", 1)], "no space"),
        ([("AB12X", 0.5)], "≥ 1"),
        ([("AB12X", float("nan"))], "≥ 1"),
    ],
)
def test_lay_out_refuses_unusable_samples(vegf, samples, fragment):
    with pytest.raises(PlateMapError, match=fragment):
        lay_out(vegf, samples)


# --------------------------------------------------------------------------- writing


def test_round_trip_keeps_everything():
    plate = small_plate()
    assert read_plate_map(write_plate_map(plate)) == plate


def test_a_laid_out_plate_round_trips(vegf):
    plate = lay_out(vegf, [(f"S{i:03d}X", 1 + i % 4) for i in range(37)])
    assert read_plate_map(write_plate_map(plate, title="VEGF run 1")) == plate


def test_written_form_has_the_grid_sheets_and_list():
    details = {"7KQ3M9XW4": {"Participant": "P-012", "Visit": "C1D1", "Volume (µL)": "50"}}
    data = write_plate_map(small_plate(), title="VEGF 2025-01-10", details=details)
    workbook = load_workbook(io.BytesIO(data))
    assert workbook.sheetnames == ["Layout", "Standards", "Dilutions", "Controls", "List"]
    layout = workbook["Layout"]
    assert [layout.cell(1, c).value for c in range(2, 14)] == list(range(1, 13))
    assert [layout.cell(r, 1).value for r in range(2, 10)] == list(ROWS)
    assert layout["B2"].value == "STD1"
    assert layout["C3"].value == "7KQ3M9XW4"
    assert layout["A11"].value == "VEGF 2025-01-10"
    # Wide enough to read a nine-character barcode.
    assert layout.column_dimensions["C"].width >= len("7KQ3M9XW4")
    standards = workbook["Standards"]
    assert [c.value for c in standards[1]] == ["Name", "Concentration", "Unit"]
    assert [c.value for c in standards[2]] == ["STD1", 1000, "pg/mL"]
    assert [c.value for c in workbook["Dilutions"][2]] == ["7KQ3M9XW4", 4]
    assert [c.value for c in workbook["Controls"][2]] == ["CTRL-L", 90, 150]
    rows = list(workbook["List"].iter_rows(values_only=True))
    assert rows[0] == ("Well", "Content", "Kind", "Dilution", "Participant", "Visit", "Volume (µL)")
    assert ("A2", "7KQ3M9XW4", "sample", 4, "P-012", "C1D1", "50") in rows
    assert ("A1", "STD1", "standard", None, None, None, None) in rows
    assert ("C2", "P2X7ZZ9Q1", "sample", 1, None, None, None) in rows
    assert len(rows) == 1 + len(small_plate().wells)


def test_dilutions_and_controls_sheets_only_when_needed():
    plate = PlateMap({"A1": "STD1", "A2": "X1Y"}, (Standard("STD1", 5.0, "ng/mL"),), {"X1Y": 1})
    workbook = load_workbook(io.BytesIO(write_plate_map(plate)))
    assert workbook.sheetnames == ["Layout", "Standards", "List"]


@pytest.mark.parametrize(
    ("plate", "fragment"),
    [
        (PlateMap({"A1": "STD1"}, (), {}), "STD1 is not among the standards"),
        (PlateMap({"A1": "abc"}, (), {}), "should be written 'ABC'"),
        (PlateMap({"I1": "ABC"}, (), {}), "'I1' is not a well"),
        (PlateMap({"A1": "ABC"}, (), {"XYZ": 2.0}), "'XYZ', which is not a sample on the plate"),
        (
            PlateMap(
                {"A1": "STD1", "A2": "STD2"},
                (Standard("STD1", 1.0, "pg/mL"), Standard("STD2", 2.0, "ng/mL")),
                {},
            ),
            "several units",
        ),
    ],
)
def test_write_refuses_a_plate_the_form_cannot_hold(plate, fragment):
    with pytest.raises(PlateMapError, match=fragment):
        write_plate_map(plate)


# --------------------------------------------------------------------------- hypothesis

_BARCODE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-."
barcodes = st.text(_BARCODE_ALPHABET, min_size=1, max_size=12).filter(
    lambda b: not b.startswith(("STD", "CTRL", "BLANK"))
)
amounts = st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False)


@st.composite
def plates(draw) -> PlateMap:
    unit = draw(st.sampled_from(["pg/mL", "ng/mL", "g/L", "IU/mL"]))
    numbers = draw(st.lists(st.integers(1, 99), unique=True, max_size=10))
    standards = tuple(Standard(f"STD{n}", draw(amounts), unit) for n in numbers)
    controls = []
    for name in draw(st.lists(st.sampled_from(["CTRL-L", "CTRL-H", "CTRL-M"]), unique=True)):
        low, high = draw(st.none() | amounts), draw(st.none() | amounts)
        if low is not None and high is not None and low > high:
            low, high = high, low
        controls.append(Control(name, low, high))
    samples = draw(st.lists(barcodes, unique=True, max_size=48))
    pool = [s.name for s in standards] + ["BLANK", "CTRL-L", "CTRL-H", "CTRL-X", *samples]
    wells = draw(st.dictionaries(st.sampled_from(WELLS), st.sampled_from(pool), max_size=96))
    on_plate = sorted({c for c in wells.values() if c in samples})
    diluted = draw(st.lists(st.sampled_from(on_plate), unique=True)) if on_plate else []
    factors = st.floats(min_value=1, max_value=1e5, allow_nan=False, allow_infinity=False)
    dilutions = {barcode: draw(factors) for barcode in diluted}
    return PlateMap(wells, tuple(draw(st.permutations(standards))), dilutions, tuple(controls))


@settings(max_examples=60)
@given(plates())
def test_read_of_write_gives_back_any_plate(plate):
    assert read_plate_map(write_plate_map(plate)) == plate


cell_values = (
    st.none()
    | st.text(max_size=12)
    | st.sampled_from(["STD1", " std 2 ", "BLANK", "ctrl-l", "STD0", "1,000", "x y"])
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
)


@settings(max_examples=60)
@given(
    st.dictionaries(st.sampled_from(WELLS), cell_values, max_size=20),
    st.lists(st.tuples(cell_values, cell_values, cell_values), max_size=5),
    st.lists(st.tuples(cell_values, cell_values), max_size=5),
)
def test_any_edit_reads_as_a_plate_or_a_plate_map_error(grid, standards, dilutions):
    def clean(value):  # xlsx cannot hold control characters; not the reader's business
        if isinstance(value, str):
            return "".join(ch for ch in value if ch.isprintable() or ch == " ")
        return value

    workbook = Workbook()
    layout = workbook.active
    layout.title = "Layout"
    for column in range(1, 13):
        layout.cell(1, column + 1, column)
    for index, letter in enumerate(ROWS):
        layout.cell(index + 2, 1, letter)
    for well, value in grid.items():
        layout.cell(ROWS.index(well[0]) + 2, int(well[1:]) + 1, clean(value))
    for title, header, rows in (
        ("Standards", ("Name", "Concentration", "Unit"), standards),
        ("Dilutions", ("Barcode", "Dilution"), dilutions),
    ):
        sheet = workbook.create_sheet(title)
        sheet.append(header)
        for row in rows:
            sheet.append([clean(value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    try:
        plate = read_plate_map(buffer.getvalue())
    except PlateMapError as err:
        assert str(err)
    else:
        assert read_plate_map(write_plate_map(plate)) == plate


@settings(max_examples=30)
@given(st.binary(max_size=200))
def test_random_bytes_are_refused_with_a_plate_map_error(data):
    with pytest.raises(PlateMapError, match="xlsx"):
        read_plate_map(data)


# --------------------------------------------------------------------------- forgiving reads


def test_read_forgives_what_people_do_to_spreadsheets():
    workbook = Workbook()
    layout = workbook.active
    layout.title = " layout "
    for column in range(1, 13):
        layout.cell(1, column + 1, str(column) if column % 2 else float(column))
    for index, letter in enumerate(ROWS):
        layout.cell(index + 2, 1, f" {letter.lower()} ")
    layout["B2"], layout["B3"] = " std 1", "STD01"
    layout["C2"], layout["C3"] = "Std-2", "std2"
    layout["D2"] = "blank"
    layout["E2"], layout["E3"] = "ctrl l", "CTRL-H"
    layout["F2"], layout["F3"] = " 7kq3m9xw4 ", "7KQ3M9XW4"
    layout["G2"] = 123456
    layout["A12"] = "notes below the grid are ignored"
    standards = workbook.create_sheet("STANDARDS")
    standards.append(["VEGF standards, lot 123"])
    standards.append([])
    standards.append(["unit", " Concentration ", "NAME", "comment"])
    standards.append(["pg/mL ", "1000", "std1", "top"])
    standards.append([" pg/mL", " 62,5 ", "STD 2"])
    standards.append([])
    dilutions = workbook.create_sheet("dilutions")
    dilutions.append(["Dilution", "barcode"])
    dilutions.append(["2,5", "7kq3m9xw4"])
    dilutions.append([1, "123456"])
    controls = workbook.create_sheet("Controls")
    controls.append(["Name", "Low", "High"])
    controls.append(["ctrl-l", "90", None])
    buffer = io.BytesIO()
    workbook.save(buffer)

    plate = read_plate_map(buffer.getvalue())

    assert plate.wells == {
        "A1": "STD1",
        "B1": "STD1",
        "A2": "STD2",
        "B2": "STD2",
        "A3": "BLANK",
        "A4": "CTRL-L",
        "B4": "CTRL-H",
        "A5": "7KQ3M9XW4",
        "B5": "7KQ3M9XW4",
        "A6": "123456",
    }
    assert plate.standards == (Standard("STD1", 1000.0, "pg/mL"), Standard("STD2", 62.5, "pg/mL"))
    assert plate.dilutions == {"7KQ3M9XW4": 2.5}
    assert plate.controls == (Control("CTRL-L", 90.0, None),)
    assert plate.samples() == ["7KQ3M9XW4", "123456"]


def test_a_zero_standard_is_accepted():
    plate = PlateMap({"A1": "STD1"}, (Standard("STD1", 0.0, "pg/mL"),), {})
    assert read_plate_map(write_plate_map(plate)).standards[0].concentration == 0


def test_controls_without_a_controls_sheet_have_no_declared_range():
    data = edited(write_plate_map(small_plate()), lambda wb: wb.remove(wb["Controls"]))
    plate = read_plate_map(data)
    assert plate.controls == ()
    assert plate.kind(plate.wells["F1"]) == "control"


# --------------------------------------------------------------------------- read errors


def _set(sheet: str, cell: str, value) -> Callable[[Workbook], None]:
    def change(workbook: Workbook) -> None:
        workbook[sheet][cell] = value

    return change


def _append(sheet: str, row: list) -> Callable[[Workbook], None]:
    def change(workbook: Workbook) -> None:
        workbook[sheet].append(row)

    return change


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        # a STDn in the grid without a row in Standards
        (_set("Layout", "D3", "STD3"), ["Layout!D3", "STD3 has no row in sheet 'Standards'"]),
        # a standard declared twice
        (
            _append("Standards", ["STD1", 900, "pg/mL"]),
            ["Standards!A4", "STD1 is declared twice", "Standards!A2"],
        ),
        # non-positive and non-numeric concentrations
        (_set("Standards", "B2", -5), ["Standards!B2", "negative"]),
        (_set("Standards", "B3", "n/a"), ["Standards!B3", "not a number"]),
        (_set("Standards", "B3", None), ["Standards!B3", "concentration missing"]),
        (_set("Standards", "B2", "1,000"), ["Standards!B2", "ambiguous"]),
        (_set("Standards", "B2", "1000 pg/mL"), ["Standards!B2", "not a number"]),
        # units that differ between standards
        (_set("Standards", "C3", "ng/mL"), ["Standards!C3", "'ng/mL' differs from 'pg/mL'"]),
        (_set("Standards", "C3", None), ["Standards!C3", "unit of STD2 missing"]),
        (_set("Standards", "A3", "S2"), ["Standards!A3", "not a standard name"]),
        # dilutions below 1 or not numbers
        (_set("Dilutions", "B2", 0.5), ["Dilutions!B2", "below 1"]),
        (_set("Dilutions", "B2", "twice"), ["Dilutions!B2", "not a number"]),
        # a Dilutions barcode not on the plate
        (_set("Dilutions", "A2", "NOTHERE1"), ["Dilutions!A2", "NOTHERE1 is not on the plate"]),
        (_append("Dilutions", ["STD1", 2]), ["Dilutions!A3", "STD1 is not a sample"]),
        (
            _append("Dilutions", [" 7kq3m9xw4", 2]),
            ["Dilutions!A3", "listed twice", "Dilutions!A2"],
        ),
        # wrong headers, and where
        (_set("Layout", "D1", "three"), ["Layout!D1", "should be 3", "'three'"]),
        (_set("Layout", "A5", "X"), ["Layout!A5", "should be D"]),
        (
            _set("Standards", "C1", "Units"),
            ["Standards row 1", "'Unit'", "Standards!C1", "'Units'"],
        ),
        (_set("Dilutions", "B1", "Factor"), ["Dilutions row 1", "'Dilution'", "Dilutions!B1"]),
        (
            _set("Standards", "D1", "name"),
            ["Standards row 1", "'Name' appears twice", "Standards!D1"],
        ),
        # grid cells that are no content
        (_set("Layout", "E4", "AB 12"), ["Layout!E4", "well C4", "no space"]),
        (_set("Layout", "E4", 12.5), ["Layout!E4", "not a name or a barcode"]),
        (_set("Layout", "E4", "STD0"), ["Layout!E4", "STD1 to STD99"]),
        # controls
        (_set("Controls", "B2", 200), ["Controls!B2", "above its high limit", "Controls!C2"]),
        (_set("Controls", "C2", "high"), ["Controls!C2", "not a number"]),
        (_set("Controls", "A2", "LOW"), ["Controls!A2", "not a control name"]),
    ],
)
def test_read_errors_name_the_sheet_and_cell(change, fragments):
    message = error_of(edited(write_plate_map(small_plate()), change))
    for fragment in fragments:
        assert fragment in message


def test_a_standard_on_the_plate_without_a_standards_sheet_is_an_error():
    data = edited(write_plate_map(small_plate()), lambda wb: wb.remove(wb["Standards"]))
    message = error_of(data)
    assert "Layout!B2" in message
    assert "STD1" in message
    assert "no sheet 'Standards'" in message


def test_a_missing_layout_sheet_is_an_error():
    def rename(workbook: Workbook) -> None:
        workbook["Layout"].title = "Plate"

    message = error_of(edited(write_plate_map(small_plate()), rename))
    assert "no sheet named 'Layout'" in message
    assert "'Plate'" in message


def test_every_problem_is_reported_at_once():
    def break_two(workbook: Workbook) -> None:
        workbook["Standards"]["B2"] = "x"
        workbook["Dilutions"]["B2"] = 0

    message = error_of(edited(write_plate_map(small_plate()), break_two))
    assert "Standards!B2" in message
    assert "Dilutions!B2" in message


def test_a_file_that_is_not_xlsx_is_refused():
    assert "xlsx" in error_of(b"Well,Content\nA1,STD1\n")
