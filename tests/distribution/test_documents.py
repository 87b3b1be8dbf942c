"""Pick list and manifest documents: PDF text and pages, workbook contents.

No database, no app: the module under test is pure. PDFs are rendered uncompressed and
their text read back by a small reader of fpdf2's output (embedded TrueType subsets are
written as glyph ids, decoded here through each font's ToUnicode map).
"""

from __future__ import annotations

import io
import re
import zlib
from datetime import datetime

import openpyxl
import pytest

from biobank.distribution.documents import (
    ELLIPSIS,
    DateFact,
    DocumentHeader,
    ManifestLine,
    PickLine,
    fit_text,
    manifest_pdf,
    manifest_xlsx,
    pick_list_pdf,
)

HEADER = DocumentHeader(
    title="Pick list — request R00012",
    reference="R00012",
    lines=(
        ("Recipient", "VEGF lab, Limoges — Dr Hélène Dupré"),
        ("Carrier", "World Courier"),
        ("Tracking number", "1Z999AA10123456784"),
        ("Dry ice", "yes, 5 kg"),
        ("Temperature logger", "TL-123"),
        ("Dispatched", "29/11/2026 14:05"),
    ),
    generated="29/11/2026 14:05",
)
MANIFEST_HEADER = DocumentHeader(
    title="Shipment manifest S00003",
    reference="S00003",
    lines=(("Recipient", "VEGF lab, Limoges"), ("Dry ice", "yes, 5 kg")),
    generated="30/11/2026 09:12",
)
DISPATCHED = datetime(2026, 11, 29, 14, 5)
LOCATION = "Freezer −80 n°1 › Shelf 2 › Rack A › Box 3"
ROWS = "ABCDEFGHI"


def pick_lines(count: int, *, picked_every: int = 7) -> list[PickLine]:
    return [
        PickLine(
            barcode=f"BB{2026000000 + i}",
            sample_type=("SER", "PL1", "PL2")[i % 3],
            volume_ul=500,
            participant=f"LIM-{i % 300:04d}",
            visit=("M0", "M2", "M12")[i % 3],
            location=LOCATION,
            position=f"{ROWS[i % 9]}{i % 9 + 1}",
            picked=i % picked_every == 0,
        )
        for i in range(count)
    ]


def manifest_lines(count: int, *, per_box: int = 81) -> list[ManifestLine]:
    return [
        ManifestLine(
            box_number=i // per_box + 1,
            position=f"{ROWS[(i % per_box) // 9]}{i % 9 + 1}",
            barcode=f"BB{2026000000 + i}",
            sample_type="SER",
            volume_ul=250 + i % 3,
            visit="M2",
            participant=f"LIM-{i % 300:04d}",
        )
        for i in range(count)
    ]


# --------------------------------------------------------------------------------------
# Reading fpdf2's uncompressed output back


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", pdf))


def _unescape(literal: str) -> bytes:
    """The bytes of a PDF literal string's body."""
    escapes = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
    out: list[str] = []
    i = 0
    while i < len(literal):
        char = literal[i]
        if char == "\\" and i + 1 < len(literal):
            following = literal[i + 1]
            octal = re.match(r"[0-7]{1,3}", literal[i + 1 :])
            if octal:
                out.append(chr(int(octal[0], 8)))
                i += 1 + len(octal[0])
                continue
            out.append(escapes.get(following, following))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out).encode("latin-1")


def _to_unicode(cmap: str) -> dict[int, str]:
    mapping: dict[int, str] = {}
    for block in re.findall(r"beginbfchar(.*?)endbfchar", cmap, re.S):
        for code, text in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            mapping[int(code, 16)] = bytes.fromhex(text).decode("utf-16-be", "replace")
    for block in re.findall(r"beginbfrange(.*?)endbfrange", cmap, re.S):
        for low, high, start in re.findall(
            r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block
        ):
            for offset in range(int(high, 16) - int(low, 16) + 1):
                mapping[int(low, 16) + offset] = chr(int(start, 16) + offset)
    return mapping


def pdf_pages_text(pdf: bytes) -> list[str]:
    """The text of each page, one shown string per line, in drawing order."""
    data = pdf.decode("latin-1")
    objects = {
        int(number): body
        for number, body in re.findall(r"(?s)(?:^|\n)(\d+) 0 obj\n(.*?)\nendobj", data)
    }

    def stream(number: int) -> str:
        body = objects[number]
        length = re.search(r"/Length (\d+)", body)
        assert length is not None
        start = body.index("stream\n") + len("stream\n")
        raw = body[start : start + int(length[1])]
        if "/FlateDecode" in body[:start]:  # fpdf2 compresses some streams regardless
            return zlib.decompress(raw.encode("latin-1")).decode("latin-1")
        return raw

    decoders = {}
    for body in objects.values():
        for names in re.findall(r"/Font\s*<<(.*?)>>", body, re.S):
            for name, number in re.findall(r"/(F\d+) (\d+) 0 R", names):
                font = objects[int(number)]
                to_unicode = re.search(r"/ToUnicode (\d+) 0 R", font)
                if to_unicode:
                    cmap = _to_unicode(stream(int(to_unicode[1])))
                    decoders[name] = lambda raw, cmap=cmap: "".join(
                        cmap.get(int.from_bytes(raw[i : i + 2], "big"), "\ufffd")
                        for i in range(0, len(raw), 2)
                    )
                else:  # a standard font
                    decoders[name] = lambda raw: raw.decode("cp1252")

    pages_object = next(body for body in objects.values() if "/Type /Pages" in body)
    kids = re.search(r"/Kids \[(.*?)\]", pages_object, re.S)
    assert kids is not None
    texts = []
    token = re.compile(r"/(F\d+) [\d.]+ Tf|\(((?:\\.|[^\\)])*)\) Tj|\[(.*?)\] TJ", re.S)
    for page in re.findall(r"(\d+) 0 R", kids[1]):
        contents = re.search(r"/Contents (\d+) 0 R", objects[int(page)])
        assert contents is not None
        font, shown = None, []
        for match in token.finditer(stream(int(contents[1]))):
            if match[1]:
                font = match[1]
            elif match[2] is not None:
                shown.append(decoders[font](_unescape(match[2])))
            else:
                parts = re.findall(r"\(((?:\\.|[^\\)])*)\)", match[3], re.S)
                shown.append("".join(decoders[font](_unescape(part)) for part in parts))
        texts.append("\n".join(shown))
    return texts


# --------------------------------------------------------------------------------------
# Pick list


def test_pick_list_shows_title_facts_every_barcode_and_page_footers():
    lines = pick_lines(60)
    pdf = pick_list_pdf(HEADER, lines, compress=False)

    assert pdf.startswith(b"%PDF-")
    pages = pdf_pages_text(pdf)
    assert page_count(pdf) == len(pages) == 2
    assert "Pick list — request R00012" in pages[0]
    assert "VEGF lab, Limoges — Dr Hélène Dupré" in pages[0]
    assert "Temperature logger" in pages[0]
    everything = "\n".join(pages)
    for line in lines:
        assert line.barcode in everything
    assert LOCATION in everything  # µ, °, ›, − survive
    assert "Volume" in pages[0] and "(µL)" in pages[0]
    assert "Location" in pages[1], "column headings repeat on each page"
    assert "Page 1 of 2" in pages[0]
    assert "Page 2 of 2" in pages[1]
    assert "29/11/2026 14:05" in pages[1]
    picked = sum(line.picked for line in lines)
    assert f"Total: 60    Picked: {picked}" in pages[1]


def test_pick_list_keeps_the_given_order():
    lines = list(reversed(pick_lines(30)))
    text = pdf_pages_text(pick_list_pdf(HEADER, lines, compress=False))[0]
    found = [text.index(line.barcode) for line in lines]
    assert found == sorted(found)


def flat(text: str) -> str:
    """A page's text with its lines joined by spaces: a cell wrapped over several lines
    reads as its whole text again."""
    return " ".join(text.split("\n"))


# Two freezers whose locations differ only at the start: a cut from the left made them
# look alike on paper ("…helf 1 › Rack 1A › POEMS box 1111").
FREEZERS = (
    "Central biobank › Room 204 › Freezer −80 °C n°1 (Thermo TSX) › Shelf 1 › Rack 1A › "
    "POEMS box 1111",
    "Central biobank › Room 204 › Freezer −80 °C n°2 (Thermo TSX) › Shelf 1 › Rack 1A › "
    "POEMS box 1111",
)
FRENCH = {
    "box": "Boîte",
    "position": "Position",
    "barcode": "Code-barres",
    "sample_type": "Type d’échantillon",
    "volume_ul": "Volume (µL)",
    "visit": "Visite",
    "participant": "Participant",
    "location": "Emplacement",
    "picked": "Prélevé",
    "page": "Page",
    "of": "sur",
    "total": "Total",
    "tube": "tube",
    "tubes": "tubes",
    "signature": "Colis préparé par / date / signature",
    "received_signature": "Reçu par / date / signature",
}


def test_pick_list_wraps_long_locations_whole_so_two_freezers_differ():
    lines = [
        PickLine(f"BB{n}", "SER", 500, "LIM-0001", "M2", location, "A1")
        for n, location in enumerate(FREEZERS)
    ]
    text = pdf_pages_text(pick_list_pdf(HEADER, lines, compress=False))[0]
    assert ELLIPSIS not in text
    for location in FREEZERS:
        assert location in flat(text)
    wrapped = [row for row in text.splitlines() if row.startswith("Central biobank")]
    assert len(wrapped) == 2 and all(row != FREEZERS[0] for row in wrapped), "wrapped, not cut"


def test_french_column_headings_wrap_and_are_never_cut():
    pick = pdf_pages_text(pick_list_pdf(HEADER, pick_lines(3), labels=FRENCH, compress=False))[0]
    manifest = pdf_pages_text(
        manifest_pdf(MANIFEST_HEADER, manifest_lines(3), labels=FRENCH, compress=False)
    )[0]
    for text, keys in (
        (pick, ("picked", "location", "position", "barcode", "sample_type", "participant")),
        (manifest, ("position", "barcode", "sample_type", "visit", "participant")),
    ):
        assert ELLIPSIS not in text
        for key in keys:
            assert FRENCH[key] in flat(text), FRENCH[key]
    assert "Prélevé" in pick.splitlines(), "a one-word heading stays one word"
    assert "Colis préparé par / date / signature" in manifest


def test_every_manifest_cell_wraps_whole():
    line = ManifestLine(
        box_number=1,
        position="A1",
        barcode="BB2026000001",
        sample_type="Serum, second aliquot of the series",
        volume_ul=250,
        visit="M12 — twelve months after inclusion",
        participant="LIM-0001 (transferred from Hôpital Saint-Louis, Paris)",
    )
    text = pdf_pages_text(manifest_pdf(MANIFEST_HEADER, [line], compress=False))[0]
    assert ELLIPSIS not in text
    for value in (line.sample_type, line.visit, line.participant):
        assert value in flat(text), value


def test_a_word_too_long_for_its_column_breaks_between_characters_none_lost():
    barcode = "X" * 60  # far wider than the barcode column, even at the smallest size
    line = PickLine(barcode, "SER", 500, "LIM-0001", "M2", "Box 1", "A1")
    text = pdf_pages_text(pick_list_pdf(HEADER, [line], compress=False))[0]
    pieces = [row for row in text.splitlines() if set(row) == {"X"}]
    assert len(pieces) > 1 and "".join(pieces) == barcode


def test_long_fact_labels_wrap_whole():
    header = DocumentHeader(
        "Manifeste S00003",
        "S00003",
        (("Enregistreur de température du colis", "TL-123"),),
        "29 nov. 2026, 14:05",
    )
    text = pdf_pages_text(manifest_pdf(header, [], compress=False))[0]
    assert ELLIPSIS not in text
    assert "Enregistreur de température du colis" in flat(text)


def test_empty_pick_list_is_one_page_saying_zero():
    pdf = pick_list_pdf(HEADER, [], compress=False)
    pages = pdf_pages_text(pdf)
    assert page_count(pdf) == 1
    assert "Total: 0    Picked: 0" in pages[0]
    assert "Page 1 of 1" in pages[0]


def test_pdfs_are_reproducible():
    lines = pick_lines(50)
    assert pick_list_pdf(HEADER, lines) == pick_list_pdf(HEADER, lines)
    boxes = manifest_lines(50)
    assert manifest_pdf(MANIFEST_HEADER, boxes) == manifest_pdf(MANIFEST_HEADER, boxes)
    assert b"/CreationDate (D:2000" in pick_list_pdf(HEADER, lines, compress=False)


def test_labels_translate_headings_and_footer():
    labels = {
        "location": "Emplacement",
        "barcode": "Code-barres",
        "page": "Page",
        "of": "sur",
        "total": "Total",
        "picked": "Prélevés",
    }
    pages = pdf_pages_text(pick_list_pdf(HEADER, pick_lines(3), labels=labels, compress=False))
    assert "Emplacement" in pages[0]
    assert "Code-barres" in pages[0]
    assert "Page 1 sur 1" in pages[0]
    assert "Prélevés: 1" in pages[0]
    assert "Sample" in pages[0], "missing keys keep their English default"


def test_two_thousand_line_pick_list():
    lines = pick_lines(2000)
    pdf = pick_list_pdf(HEADER, lines, compress=False)
    pages = pdf_pages_text(pdf)
    total = len(pages)
    assert total == page_count(pdf) > 40
    assert f"Page {total} of {total}" in pages[-1]
    everything = "\n".join(pages)
    assert all(line.barcode in everything for line in lines)


# --------------------------------------------------------------------------------------
# Manifest PDF


def test_manifest_pdf_has_a_table_per_box_totals_and_signatures():
    lines = manifest_lines(100)  # box 1: 81 tubes, box 2: 19
    pdf = manifest_pdf(MANIFEST_HEADER, lines, compress=False)
    pages = pdf_pages_text(pdf)
    total = page_count(pdf)
    assert total == len(pages) >= 2
    everything = "\n".join(pages)

    assert "Shipment manifest S00003" in pages[0]
    assert "Box 1 (81 tubes)" in pages[0]
    assert "Box 2 (19 tubes)" in everything
    for line in lines:
        assert line.barcode in everything
    volume = sum(line.volume_ul for line in lines)
    assert f"Total: 100 tubes, {volume} µL" in pages[-1]
    assert "Packed by / date / signature" in pages[-1]
    assert "Received by / date / signature" in pages[-1]
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {total}" in text
        assert "30/11/2026 09:12" in text


def test_manifest_pdf_singular_tube_and_empty_manifest():
    one = [manifest_lines(1)[0]]
    assert "Box 1 (1 tube)" in pdf_pages_text(manifest_pdf(MANIFEST_HEADER, one, compress=False))[0]

    pdf = manifest_pdf(MANIFEST_HEADER, [], compress=False)
    assert page_count(pdf) == 1
    assert "Total: 0 tubes, 0 µL" in pdf_pages_text(pdf)[0]


ODD = "日本語 😀 e\u0301 \x00\x07 ‮ العربية\ttab\nline"


def test_unusual_characters_do_not_raise():
    header = DocumentHeader(ODD, ODD, ((ODD, ODD), ("", "")), ODD)
    pick = [
        PickLine(ODD, ODD, 1, ODD, ODD, ODD * 10, ODD, True),
        PickLine("", "", 0, "", "", "", ""),
    ]
    manifest = [ManifestLine(1, ODD, ODD, ODD, 1, ODD, ODD), ManifestLine(2, "", "", "", 0, "", "")]

    assert page_count(pick_list_pdf(header, pick, compress=False)) == 1
    assert page_count(manifest_pdf(header, manifest, compress=False)) == 1
    workbook = openpyxl.load_workbook(io.BytesIO(manifest_xlsx(header, manifest)))
    assert workbook.sheetnames == ["Manifest", "Boxes"]


# --------------------------------------------------------------------------------------
# Text fitting


def _chars(text: str) -> float:
    return float(len(text))


def test_fit_text_leaves_text_that_fits():
    assert fit_text("Box 3", 5, _chars) == "Box 3"


def test_fit_text_keeps_the_end_by_default():
    shortened = fit_text(LOCATION, 20, _chars)
    assert shortened.startswith("…")
    assert LOCATION.endswith(shortened[1:])
    assert len(shortened) <= 20
    assert shortened.endswith("Rack A › Box 3")


def test_fit_text_can_keep_the_start():
    assert fit_text("Participant", 8, _chars, keep_end=False) == "Partici…"


def test_fit_text_drops_spaces_at_the_cut():
    assert fit_text("Shelf 2 › Box 3", 6, _chars) == "…Box 3"
    assert fit_text("Sample type", 8, _chars, keep_end=False) == "Sample…"
    assert fit_text("salle 204, bâtiment B", 12, _chars) == "…bâtiment B"


def test_fit_text_gives_up_when_not_even_the_ellipsis_fits():
    assert fit_text("Box 3", 0.5, _chars) == ""
    assert fit_text("Box 3", 1, _chars) == "…"


@pytest.mark.parametrize("width", [1, 2, 7, 13, 30, 44])
def test_fit_text_never_exceeds_the_width(width):
    def measure(text: str) -> float:  # wide capitals, like a real font
        return sum(1.6 if char.isupper() else 1.0 for char in text)

    shortened = fit_text(LOCATION, width, measure)
    assert measure(shortened) <= width


# --------------------------------------------------------------------------------------
# Manifest workbook


def _load(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data))


def test_manifest_xlsx_has_header_facts_then_the_lines_in_order():
    lines = manifest_lines(100)
    workbook = _load(manifest_xlsx(MANIFEST_HEADER, lines))
    assert workbook.sheetnames == ["Manifest", "Boxes"]
    sheet = workbook["Manifest"]
    rows = list(sheet.iter_rows(values_only=True))

    assert rows[0][0] == "Shipment manifest S00003"
    assert [row[:2] for row in rows[1:3]] == list(MANIFEST_HEADER.lines)
    assert all(value is None for value in rows[3])
    headings = rows[4]
    assert headings == (
        "Box",
        "Position",
        "Barcode",
        "Sample type",
        "Volume (µL)",
        "Visit",
        "Participant",
    )
    assert all(cell.font.b for cell in sheet[5])
    expected = [
        (
            line.box_number,
            line.position,
            line.barcode,
            line.sample_type,
            line.volume_ul,
            line.visit,
            line.participant,
        )
        for line in lines
    ]
    assert rows[5:] == expected
    assert all(type(row[4]) is int for row in rows[5:])
    assert all(sheet.cell(row, 3).data_type == "s" for row in range(6, 106))
    assert sheet.freeze_panes == "A6"
    assert sheet.auto_filter.ref == "A5:G105"
    assert 10 <= sheet.column_dimensions["C"].width <= 45


def test_manifest_xlsx_translated_headings():
    labels = {"box": "Boîte", "volume_ul": "Volume (µL)", "barcode": "Code-barres"}
    sheet = _load(manifest_xlsx(MANIFEST_HEADER, manifest_lines(2), labels=labels))["Manifest"]
    assert sheet["A5"].value == "Boîte"
    assert sheet["C5"].value == "Code-barres"
    assert _load(manifest_xlsx(MANIFEST_HEADER, manifest_lines(2), labels=labels))["Boxes"][
        "A1"
    ].value == ("Boîte 1 (2 tubes)")


def test_barcodes_and_text_stay_text_never_formulas():
    line = ManifestLine(1, "A1", "000123", '=HYPERLINK("x")', 5, "#N/A", "+33")
    sheet = _load(manifest_xlsx(MANIFEST_HEADER, [line]))["Manifest"]
    row = list(sheet[6])
    # What could start a formula is quoted (biobank/tabular.py); "#N/A" is text, not an error.
    quoted = ['\'=HYPERLINK("x")', "'+33"]
    assert [cell.value for cell in row] == [1, "A1", "000123", quoted[0], 5, "#N/A", quoted[1]]
    assert [cell.data_type for cell in row] == ["n", "s", "s", "s", "n", "s", "s"]


def test_boxes_sheet_puts_each_barcode_in_its_cell():
    lines = [
        ManifestLine(1, "A1", "B1-A1", "SER", 100, "M0", "P1"),
        ManifestLine(1, "C4", "B1-C4", "SER", 100, "M0", "P1"),
        ManifestLine(1, "B2", "B1-B2", "SER", 100, "M0", "P1"),
        ManifestLine(7, "B12", "B7-B12", "PL1", 100, "M0", "P2"),
        ManifestLine(7, "??", "B7-odd", "PL1", 100, "M0", "P2"),
        ManifestLine(7, "A03", "B7-A03", "PL1", 100, "M0", "P2"),  # padded, box of 10+ columns
        ManifestLine(7, "b-2", "B7-b-2", "PL1", 100, "M0", "P2"),
        ManifestLine(7, "C0", "B7-C0", "PL1", 100, "M0", "P2"),  # no column 0
    ]
    rows = list(_load(manifest_xlsx(MANIFEST_HEADER, lines))["Boxes"].iter_rows(values_only=True))

    def trimmed(row: tuple) -> tuple:
        values = list(row)
        while values and values[-1] is None:
            values.pop()
        return tuple(values)

    rows = [trimmed(row) for row in rows]
    # Box 1: rows A-C (highest row letter C), columns 1-4 (highest column 4).
    assert rows[0] == ("Box 1 (3 tubes)",)
    assert rows[1] == (None, 1, 2, 3, 4)
    assert rows[2] == ("A", "B1-A1")
    assert rows[3] == ("B", None, "B1-B2")
    assert rows[4] == ("C", None, None, None, "B1-C4")
    assert rows[5] == ()
    # Box 7: rows A-B, columns 1-12; a position that is no cell is listed under it.
    assert rows[6] == ("Box 7 (5 tubes)",)
    assert rows[7] == (None, *range(1, 13))
    assert rows[8] == ("A", None, None, "B7-A03")
    assert rows[9] == ("B", None, "B7-b-2", *([None] * 9), "B7-B12")
    assert rows[10] == ("??", "B7-odd")
    assert rows[11] == ("C0", "B7-C0")
    assert len(rows) == 12  # openpyxl does not read back the trailing blank row


def test_two_thousand_line_manifest_xlsx_round_trips():
    lines = manifest_lines(2000)
    workbook = _load(manifest_xlsx(MANIFEST_HEADER, lines))
    rows = list(workbook["Manifest"].iter_rows(min_row=6, values_only=True))
    assert rows == [
        (
            line.box_number,
            line.position,
            line.barcode,
            line.sample_type,
            line.volume_ul,
            line.visit,
            line.participant,
        )
        for line in lines
    ]
    grid = {
        value
        for row in workbook["Boxes"].iter_rows(values_only=True)
        for value in row
        if isinstance(value, str) and value.startswith("BB")
    }
    assert grid == {line.barcode for line in lines}


def test_manifest_xlsx_writes_a_date_fact_as_a_real_date():
    header = DocumentHeader(
        "Manifest S00003",
        "S00003",
        (("Carrier", "World Courier"), ("Dispatched", DateFact("29 nov. 2026, 14:05", DISPATCHED))),
        "30/11/2026 09:12",
    )
    sheet = _load(manifest_xlsx(header, manifest_lines(2)))["Manifest"]
    cell = sheet["B3"]
    assert sheet["A3"].value == "Dispatched"
    assert cell.is_date and cell.value == DISPATCHED
    assert cell.number_format == "yyyy-mm-dd hh:mm"
    assert sheet.column_dimensions["B"].width >= len("yyyy-mm-dd hh:mm")
