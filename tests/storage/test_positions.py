import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from biobank.storage.positions import (
    MAX_COLS,
    MAX_ROWS,
    Grid,
    PositionError,
    grid_for,
    split_position,
)

BOX_SIZES = [(9, 9), (10, 10), (8, 12)]

grids = st.builds(
    Grid, st.integers(min_value=1, max_value=MAX_ROWS), st.integers(min_value=1, max_value=MAX_COLS)
)


@st.composite
def grids_and_cells(draw):
    grid = draw(grids)
    row = draw(st.integers(min_value=1, max_value=grid.rows))
    col = draw(st.integers(min_value=1, max_value=grid.cols))
    return grid, row, col


# -- sizes -------------------------------------------------------------------


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (9, 9), (10, 10), (8, 12), (26, 99)])
def test_grid_for_accepts_the_configurable_range(rows, cols):
    grid = grid_for(rows, cols)
    assert (grid.rows, grid.cols) == (rows, cols)
    assert grid.size == rows * cols


@pytest.mark.parametrize(
    ("rows", "cols", "named"),
    [(0, 9, "rows"), (27, 9, "rows"), (9, 0, "columns"), (9, 100, "columns"), (-1, 9, "rows")],
)
def test_grid_for_refuses_sizes_out_of_range(rows, cols, named):
    with pytest.raises(PositionError, match=named):
        grid_for(rows, cols)


@pytest.mark.parametrize(("rows", "cols"), [(True, 12), (8, 12.0), ("8", 12)])
def test_grid_for_refuses_what_is_not_an_integer(rows, cols):
    with pytest.raises(PositionError):
        grid_for(rows, cols)


def test_grid_is_a_hashable_value():
    assert grid_for(8, 12) == Grid(8, 12)
    assert len({grid_for(8, 12), Grid(8, 12), Grid(9, 9)}) == 2


def test_description_names_the_ranges():
    assert Grid(8, 12).description == "8 × 12 box (rows A–H, columns 1–12)"
    assert Grid(1, 1).description == "1 × 1 box (row A, column 1)"


# -- labels ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "cols", "first", "last"),
    [(9, 9, "A1", "I9"), (10, 10, "A01", "J10"), (8, 12, "A01", "H12"), (26, 99, "A01", "Z99")],
)
def test_label_pads_the_column_to_the_width_of_the_last_one(rows, cols, first, last):
    grid = Grid(rows, cols)
    assert grid.label(1, 1) == first
    assert grid.label(rows, cols) == last


def test_label_example():
    assert Grid(8, 12).label(2, 4) == "B04"
    assert Grid(9, 9).label(2, 4) == "B4"


@pytest.mark.parametrize(("row", "col"), [(0, 1), (1, 0), (9, 1), (1, 13), (-1, -1)])
def test_label_refuses_cells_outside_the_box(row, col):
    with pytest.raises(PositionError, match="outside the 8 × 12 box"):
        Grid(8, 12).label(row, col)


@pytest.mark.parametrize(("rows", "cols"), BOX_SIZES)
def test_every_label_round_trips(rows, cols):
    grid = Grid(rows, cols)
    for row, col in grid.fill_order():
        label = grid.label(row, col)
        assert grid.parse(label) == (row, col)
        assert grid.canonical(label) == label


@pytest.mark.parametrize(("rows", "cols"), BOX_SIZES)
def test_labels_are_unique_and_sort_in_fill_order(rows, cols):
    labels = Grid(rows, cols).all_labels()
    assert len(set(labels)) == rows * cols
    # Zero-padding is what makes a plain text sort put A10 after A09, not after A1.
    assert sorted(labels) == labels


def test_fill_order_is_row_major():
    grid = Grid(8, 12)
    order = grid.fill_order()
    assert order[:3] == [(1, 1), (1, 2), (1, 3)]
    assert order[11:13] == [(1, 12), (2, 1)]
    assert order[-1] == (8, 12)
    assert len(order) == grid.size == 96
    assert grid.all_labels()[:2] == ["A01", "A02"]
    assert grid.all_labels()[12] == "B01"


# -- parsing -----------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    ["B4", "B04", "B004", "b4", "b04", " B 4 ", "B-4", "b-04", "B:4", "B/04", "\tB4\r\n", "B - 4"],
)
def test_parse_accepts_the_ways_a_position_is_typed(typed):
    assert Grid(8, 12).parse(typed) == (2, 4)
    assert Grid(8, 12).canonical(typed) == "B04"
    assert Grid(9, 9).canonical(typed) == "B4"


def test_a1_and_a01_are_the_same_position():
    for grid in (Grid(9, 9), Grid(10, 10), Grid(8, 12)):
        assert grid.parse("A1") == grid.parse("A01") == grid.parse("a001") == (1, 1)


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("A0", "outside"),
        ("I1", "outside"),  # 8 rows: A–H
        ("Z1", "outside"),
        ("A13", "outside"),
        ("J3", "outside"),
        ("AA1", "not a row letter followed by a column number"),
        ("1A", "not a row letter followed by a column number"),
        ("4B", "not a row letter followed by a column number"),
        ("A1.5", "not a row letter followed by a column number"),
        ("A", "not a row letter followed by a column number"),
        ("12", "not a row letter followed by a column number"),
        ("A-", "not a row letter followed by a column number"),
        ("A--1", "not a row letter followed by a column number"),
        ("A1B", "not a row letter followed by a column number"),
        ("A 1 2", "not a row letter followed by a column number"),
        ("Ä1", "not a row letter followed by a column number"),
        ("A٣", "not a row letter followed by a column number"),  # Arabic-Indic three
        ("A３", "not a row letter followed by a column number"),  # full-width three
        ("A1234", "not a row letter followed by a column number"),
    ],
)
def test_parse_refuses_with_a_message_naming_the_input_and_the_box(typed, reason):
    with pytest.raises(PositionError) as caught:
        Grid(8, 12).parse(typed)
    message = str(caught.value)
    assert reason in message
    assert f'"{typed.strip()}"' in message
    assert "8 × 12 box (rows A–H, columns 1–12)" in message


def test_out_of_range_message():
    with pytest.raises(PositionError) as caught:
        Grid(8, 12).parse("J3")
    assert str(caught.value) == 'position "J3" is outside the 8 × 12 box (rows A–H, columns 1–12)'


def test_garbage_message_shows_an_example_of_the_box():
    with pytest.raises(PositionError, match='like "B04"'):
        Grid(8, 12).parse("1A")
    with pytest.raises(PositionError, match='like "B4"'):
        Grid(9, 9).parse("1A")
    with pytest.raises(PositionError, match='like "A1"'):
        Grid(1, 1).parse("1A")


def test_a_long_input_is_cut_in_the_message():
    with pytest.raises(PositionError) as caught:
        Grid(8, 12).parse("X" * 500)
    assert len(str(caught.value)) < 200
    assert "…" in str(caught.value)


def test_split_position_checks_the_shape_only():
    assert split_position("z0") == (26, 0)
    assert split_position(" H 012 ") == (8, 12)
    assert split_position("Z999") == (26, 999)
    assert split_position("AA1") is None
    assert split_position("") is None


# -- properties --------------------------------------------------------------


@given(grids_and_cells())
def test_label_parse_round_trip_on_any_grid(case):
    grid, row, col = case
    label = grid.label(row, col)
    assert grid.parse(label) == (row, col)
    assert grid.canonical(label.lower()) == label
    assert grid.canonical(f" {label[0]} - {col:03d} ") == label


@given(grids_and_cells(), st.integers(min_value=1, max_value=3))
def test_any_zero_padding_and_case_gives_the_same_cell(case, width):
    grid, row, col = case
    letter = string.ascii_uppercase[row - 1]
    for typed in (f"{letter}{col:0{width}d}", f"{letter.lower()}{col:0{width}d}"):
        assert grid.parse(typed) == (row, col)


@given(grids, st.text(max_size=12))
def test_parse_returns_a_cell_of_the_box_or_refuses(grid, typed):
    try:
        row, col = grid.parse(typed)
    except PositionError as err:
        assert str(err)
    else:
        assert 1 <= row <= grid.rows
        assert 1 <= col <= grid.cols
        assert grid.parse(grid.label(row, col)) == (row, col)


@given(grids)
def test_fill_order_covers_the_box_once(grid):
    order = grid.fill_order()
    assert len(order) == len(set(order)) == grid.size
    assert order == sorted(order)
    assert [grid.parse(label) for label in grid.all_labels()] == order
