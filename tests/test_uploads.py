"""biobank/uploads.py: uploaded workbooks and text files read within their caps."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date, datetime

import openpyxl
import pytest

from biobank import uploads
from biobank.errors import size_text
from biobank.uploads import TooLarge, UploadLimits

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def xlsx(*sheets: tuple[str, list[list]]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rewritten(data: bytes, part: str, change) -> bytes:
    """The workbook with one part's XML changed by ``change(text) -> text``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as old, zipfile.ZipFile(out, "w") as new:
        for item in old.infolist():
            content = old.read(item.filename)
            if item.filename == part:
                content = change(content.decode()).encode()
            new.writestr(item, content, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def with_part(data: bytes, part: str, content: str) -> bytes:
    """The workbook with one more part (openpyxl writes texts inline, without a shared
    strings part)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as old, zipfile.ZipFile(out, "w") as new:
        for item in old.infolist():
            new.writestr(item, old.read(item.filename), zipfile.ZIP_DEFLATED)
        new.writestr(part, content, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def read_all(data: bytes, limits: UploadLimits | None = None) -> dict[str, list[tuple]]:
    with uploads.open_workbook(data, filename="f.xlsx", limits=limits) as book:
        return {sheet.title: list(book.rows(sheet)) for sheet in book.worksheets}


def refusal(call) -> str:
    with pytest.raises(TooLarge) as caught:
        call()
    assert caught.value.code == "upload.limit" and caught.value.status == 400
    return str(caught.value.message)


# --- limits ------------------------------------------------------------------------------


def test_in_an_application_the_limits_are_its_settings(app):
    assert uploads.current_limits() == UploadLimits()
    app.config.update(UPLOAD_MAX_ROWS=10, UPLOAD_MAX_ZIP_RATIO=7)
    assert uploads.current_limits() == UploadLimits(max_rows=10, max_zip_ratio=7)


def test_outside_an_application_the_limits_are_the_defaults():
    assert uploads.current_limits() == UploadLimits()
    assert UploadLimits().max_rows == 60_000 and UploadLimits().max_columns == 200


def test_sizes_are_written_as_people_read_them():
    assert size_text(16 * 1024 * 1024) == "16 MB"
    assert size_text(64 * 1024) == "64 KB"
    assert size_text(1536) == "1.5 KB"
    assert size_text(900) == "900 bytes"


# --- workbooks ---------------------------------------------------------------------------


def test_values_come_as_openpyxl_reads_them_with_trailing_empty_cells_left_out():
    when = datetime(2026, 3, 2, 9, 30)
    data = xlsx(
        ("Results", [["Well", "Value", None, None], [], ["A1", 0.5, when, "=1+1"]]),
        ("Other", [[None, None, "x"]]),
    )
    assert read_all(data) == {
        "Results": [("Well", "Value"), (), ("A1", 0.5, when)],  # a formula: no cached value
        "Other": [(None, None, "x")],
    }


def read_all_fast(data: bytes, limits: UploadLimits | None = None) -> dict[str, list[tuple]]:
    with uploads.open_fast_workbook(data, filename="f.xlsx", limits=limits) as book:
        return {title: list(book.rows(title)) for title in book.titles}


def test_the_fast_reader_reads_the_values_openpyxl_reads_from_a1():
    when = datetime(2026, 3, 2, 9, 30)
    data = xlsx(
        ("Results", [["Well", "Value", None, None], [], ["A1", 0.5, when, "=1+1", 500, True]]),
        ("Other", [[], [], [None, None, "x", 12345]]),  # values from C3: still from A1
    )
    assert (
        read_all_fast(data)
        == read_all(data)
        == {
            "Results": [("Well", "Value"), (), ("A1", 0.5, when, None, 500, True)],
            "Other": [(), (), (None, None, "x", 12345)],
        }
    )
    assert type(read_all_fast(data)["Other"][2][3]) is int  # 12345, not 12345.0


def test_the_fast_reader_reads_a_date_without_a_time_as_a_date():
    book = openpyxl.Workbook()
    book.active["A1"] = date(2026, 3, 2)
    out = io.BytesIO()
    book.save(out)
    assert read_all_fast(out.getvalue()) == {"Sheet": [(date(2026, 3, 2),)]}


def test_the_fast_reader_is_held_to_the_same_caps():
    data = xlsx(("S", [[1, 2, 3]] * 6))
    assert refusal(lambda: read_all_fast(data, UploadLimits(max_rows=4))) == refusal(
        lambda: read_all(data, UploadLimits(max_rows=4))
    )
    far = rewritten(
        xlsx(("S", [["a"]])),
        "xl/worksheets/sheet1.xml",
        lambda t: t.replace(
            "</sheetData>", '<row r="1048576"><c r="XFD1048576" s="0"/></row></sheetData>'
        ),
    )
    assert read_all_fast(far) == {"S": [("a",)]}


def test_a_wrong_or_missing_dimension_neither_cuts_nor_pads_rows():
    data = xlsx(("S", [["a", "b", "c"], [1, 2, 3]]))
    wrong = rewritten(
        data,
        "xl/worksheets/sheet1.xml",
        lambda t: re.sub(r'<dimension ref="[^"]*"', '<dimension ref="A1:XFD1048576"', t),
    )
    cut = rewritten(
        data,
        "xl/worksheets/sheet1.xml",
        lambda t: re.sub(r'<dimension ref="[^"]*"', '<dimension ref="A1"', t),
    )
    assert read_all(wrong) == read_all(cut) == {"S": [("a", "b", "c"), (1, 2, 3)]}


def test_empty_cells_far_away_are_not_values():
    data = xlsx(("S", [["a"]]))
    styled = rewritten(
        data,
        "xl/worksheets/sheet1.xml",
        lambda t: t.replace(
            "</sheetData>", '<row r="1048576"><c r="XFD1048576" s="0"/></row></sheetData>'
        ),
    )
    assert read_all(styled) == {"S": [("a",)]}


def test_rows_columns_and_cells_over_their_caps_name_the_sheet():
    data = xlsx(("Plate 1", [[1] * 5 for _ in range(5)]))
    assert refusal(lambda: read_all(data, UploadLimits(max_rows=4))) == (
        'f.xlsx: Sheet "Plate 1" has more than 4 rows, the limit for an upload.'
    )
    assert refusal(lambda: read_all(data, UploadLimits(max_columns=4))) == (
        'f.xlsx: Sheet "Plate 1" has more than 4 columns (a value in E1), the limit for an upload.'
    )
    assert refusal(lambda: read_all(data, UploadLimits(max_cells=24))) == (
        'f.xlsx: The workbook has more than 24 cells (counted up to sheet "Plate 1"), the '
        "limit for an upload."
    )
    assert (
        len(read_all(data, UploadLimits(max_rows=5, max_columns=5, max_cells=25))["Plate 1"]) == 5
    )


def test_too_many_sheets_are_refused():
    data = xlsx(*((f"S{n}", [[n]]) for n in range(4)))
    assert refusal(lambda: read_all(data, UploadLimits(max_sheets=3))) == (
        "f.xlsx: The workbook has more than 3 sheets, the limit for an upload."
    )


def test_the_declared_unpacked_size_and_the_packing_ratio_are_checked_first():
    rows = [[0.5] * 20 for _ in range(5_000)]  # a 2 MB sheet, packed about 50 times
    data = xlsx(("S", rows))
    assert refusal(lambda: read_all(data, UploadLimits(max_unzipped_bytes=1024 * 1024))) == (
        "f.xlsx: The workbook unpacks to more than 1 MB, the limit for an upload."
    )
    assert refusal(lambda: read_all(data, UploadLimits(max_zip_ratio=10))) == (
        "f.xlsx: Part xl/worksheets/sheet1.xml of the workbook is packed more than 10 times "
        "smaller than its content, the limit for an upload."
    )
    assert len(read_all(data)["S"]) == 5_000


def test_a_part_declaring_less_than_it_holds_is_never_unpacked_beyond_its_declaration():
    data = xlsx(("S", [["a", "b"]]))
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as old, zipfile.ZipFile(out, "w") as new:
        for item in old.infolist():
            new.writestr(item, old.read(item.filename), zipfile.ZIP_DEFLATED)
    forged = bytearray(out.getvalue())
    # The sheet's central directory entry: its uncompressed size says 10 bytes.
    entry = forged.find(b"PK\x01\x02", forged.find(b"PK\x01\x02"))
    while entry != -1:
        name_length = int.from_bytes(forged[entry + 28 : entry + 30], "little")
        if forged[entry + 46 : entry + 46 + name_length] == b"xl/worksheets/sheet1.xml":
            forged[entry + 24 : entry + 28] = (10).to_bytes(4, "little")
        entry = forged.find(b"PK\x01\x02", entry + 4)
    with pytest.raises(zipfile.BadZipFile):
        read_all(bytes(forged))


def test_a_zip_of_too_many_parts_is_refused_before_it_is_opened():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as many:
        for n in range(uploads.MAX_PARTS + 1):
            many.writestr(f"x/{n}.bin", b"")
    assert refusal(lambda: read_all(out.getvalue())) == (
        "f.xlsx: The workbook has more than 1,000 parts, the limit for an upload."
    )


def test_a_styles_part_of_too_many_elements_is_refused_before_openpyxl_builds_them():
    data = xlsx(("S", [["a"]]))
    xf = '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    count = uploads.MAX_OTHER_ELEMENTS + 1
    bloated = rewritten(
        data,
        "xl/styles.xml",
        lambda t: re.sub(
            r"<cellXfs.*?</cellXfs>", f'<cellXfs count="{count}">{xf * count}</cellXfs>', t
        ),
    )
    assert refusal(lambda: read_all(bloated, UploadLimits(max_zip_ratio=10**6))) == (
        "f.xlsx: Part xl/styles.xml of the workbook holds more than 100,000 elements, the limit "
        "for an upload."
    )


def test_shared_strings_count_against_the_cells():
    data = xlsx(("S", [list(range(10))]))
    strings = with_part(
        data, "xl/sharedStrings.xml", f'<sst xmlns="{MAIN}">' + "<si><t>x</t></si>" * 26 + "</sst>"
    )
    assert refusal(lambda: read_all(strings, UploadLimits(max_cells=25))) == (
        "f.xlsx: The workbook holds more than 25 texts, the limit for an upload."
    )


def test_a_part_with_a_dtd_is_unreadable():
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    )
    data = xlsx(("S", [["a"]]))
    sst = f'<sst xmlns="{MAIN}"><si><t>&lol2;</t></si></sst>'
    evil = with_part(data, "xl/sharedStrings.xml", laughs + sst)
    with pytest.raises(uploads.Unreadable, match=r"part xl/sharedStrings\.xml declares a DTD"):
        read_all(evil)


def test_rows_of_a_sheet_without_row_numbers_are_counted_as_openpyxl_counts_them():
    data = xlsx(("S", [["a"]]))
    bare = rewritten(
        data,
        "xl/worksheets/sheet1.xml",
        lambda t: re.sub(
            r"<sheetData>.*</sheetData>",
            "<sheetData>" + "<row><c><v>1</v></c><c><v>2</v></c></row>" * 3 + "</sheetData>",
            t,
        ),
    )
    assert read_all(bare) == {"S": [(1, 2)] * 3}
    assert refusal(lambda: read_all(bare, UploadLimits(max_rows=2))).endswith(
        "more than 2 rows, the limit for an upload."
    )
    assert "(a value in B1)" in refusal(lambda: read_all(bare, UploadLimits(max_columns=1)))


# --- text files ---------------------------------------------------------------------------


def test_text_lines_keep_their_ends_and_stop_at_the_caps():
    text = "a;b\r\nc\rd\n\ne"
    assert uploads.text_lines(text) == ["a;b\r\n", "c\r", "d\n", "\n", "e"]
    assert uploads.text_lines(text, keepends=False) == ["a;b", "c", "d", "", "e"]
    limits = UploadLimits(max_rows=4, max_line_length=3)
    assert refusal(lambda: uploads.text_lines(text, filename="s.csv", limits=limits)) == (
        "s.csv: The file has more than 4 lines, the limit for an upload."
    )
    assert refusal(lambda: uploads.text_lines("abc\nabcd\n", limits=limits)) == (
        "Line 2 is longer than 3 characters, the limit for an upload."
    )


def test_csv_rows_number_their_lines_and_leave_out_trailing_empty_cells():
    lines = uploads.text_lines('a;b;;\n"multi\nline";c\n;;;\nd\n')
    assert list(uploads.csv_rows(lines, ";")) == [
        (1, ["a", "b"]),
        (2, ["multi\nline", "c"]),
        (4, []),
        (5, ["d"]),
    ]


def test_csv_rows_refuse_too_many_columns_or_cells():
    lines = uploads.text_lines("a;b;c\nd;e;f\n" + ";" * 50 + "\n")
    limits = UploadLimits(max_columns=2)
    assert refusal(lambda: list(uploads.csv_rows(lines, ";", limits=limits))) == (
        "Line 1 has more than 2 columns, the limit for an upload."
    )
    limits = UploadLimits(max_cells=5)
    assert refusal(lambda: list(uploads.csv_rows(lines, ";", filename="s.csv", limits=limits))) == (
        "s.csv: The file has more than 5 cells (counted up to line 2), the limit for an upload."
    )


def test_a_line_the_csv_module_cannot_read_says_which():
    lines = uploads.text_lines('a\n"b' + "x" * 200_000 + '"\n')
    with pytest.raises(uploads.CsvError) as caught:
        list(uploads.csv_rows(lines, ";"))
    assert caught.value.line == 2


def test_a_text_file_over_its_size_is_refused_before_it_is_decoded():
    limits = UploadLimits(max_text_bytes=2048)
    uploads.check_text_size(b"x" * 2048, limits=limits)
    assert refusal(
        lambda: uploads.check_text_size(b"x" * 2049, filename="s.csv", limits=limits)
    ) == ("s.csv: The file is larger than 2 KB, the limit for a text upload.")
