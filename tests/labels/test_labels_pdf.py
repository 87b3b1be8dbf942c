"""PDF sheets and single-label PDFs: page count, physical size, decodable labels."""

import re
import zlib

import pytest
from labels_testdata import aliquot, decode, pdf_pages

import labels
from labels.sheet import slot_origin
from labels.units import mm_to_dots_floor

A4_PT = (595.276, 841.89)
LETTER_PT = (612.0, 792.0)


def visit(count: int) -> list[labels.LabelData]:
    return [
        aliquot(
            f"V{index:04d}{'KQ2M9X'[index % 6]}W{index % 97:02d}A", series=f"{index + 1}/{count}"
        )
        for index in range(count)
    ]


def _decode_slots(sheet, page, data, dpi, first_slot=0):
    label = sheet.label
    size = (mm_to_dots_floor(label.width_mm, dpi), mm_to_dots_floor(label.height_mm, dpi))
    for slot, item in enumerate(data, start=first_slot):
        x, y = slot_origin(sheet, slot, dpi)
        crop = page.crop((x, y, x + size[0], y + size[1]))
        assert [text for _, text in decode(crop)] == [item.code], f"slot {slot}"


@pytest.mark.parametrize(("name", "page_pt"), [("sheet-a4", A4_PT), ("sheet-letter", LETTER_PT)])
def test_96_label_sheet_is_one_page_of_the_right_size(name, page_pt):
    sheet = labels.load_template(name)
    pdf = labels.render_pdf(sheet, visit(96), 300)
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert re.search(rb"/Type /Pages /Kids \[[^\]]*\] /Count 1\b", pdf)
    assert pdf_pages(pdf) == [pytest.approx(page_pt, abs=0.01)]


@pytest.mark.parametrize("dpi", [203, 300])
def test_every_label_on_the_composed_sheet_decodes(dpi):
    sheet = labels.load_template("sheet-a4")
    data = visit(96)
    (page,) = labels.render_pages(sheet, data, dpi)
    assert page.size == (mm_to_dots_floor(210, dpi), mm_to_dots_floor(297, dpi))
    _decode_slots(sheet, page, data, dpi)


def test_pdf_holds_exactly_the_composed_bitmaps():
    sheet = labels.load_template("sheet-letter")
    data = visit(10)
    pages = labels.render_pages(sheet, data, 203)
    pdf = labels.render_pdf(sheet, data, 203)
    streams = re.findall(
        rb"/Width (\d+) /Height (\d+) .*?/Length (\d+) >>\nstream\n", pdf, flags=re.S
    )
    assert len(streams) == len(pages) == 1
    width, height, length = map(int, streams[0])
    start = pdf.index(b"stream\n") + len(b"stream\n")
    bitmap = zlib.decompress(pdf[start : start + length])
    assert (width, height) == pages[0].size
    assert bitmap == pages[0].tobytes()


def test_more_labels_than_a_page_continue_on_the_next_page():
    sheet = labels.load_template("sheet-letter")
    data = visit(130)
    pdf = labels.render_pdf(sheet, data, 203)
    assert pdf_pages(pdf) == [pytest.approx(LETTER_PT, abs=0.01)] * 2
    pages = labels.render_pages(sheet, data, 203)
    _decode_slots(sheet, pages[1], data[100:], 203)


def test_skip_starts_on_a_partly_used_sheet():
    sheet = labels.load_template("sheet-a4")
    data = visit(3)
    pages = labels.render_pages(sheet, data, 203, skip=99)
    assert len(pages) == 2
    _decode_slots(sheet, pages[0], data[:1], 203, first_slot=99)
    _decode_slots(sheet, pages[1], data[1:], 203)
    with pytest.raises(ValueError, match="skip"):
        labels.render_pages(sheet, data, 203, skip=100)


def test_single_label_pdf_has_one_label_sized_page_per_label():
    template = labels.load_template("cryo-38x13")
    pdf = labels.render_pdf(template, visit(3), 600)
    size_pt = (38 * 72 / 25.4, 13 * 72 / 25.4)
    assert pdf_pages(pdf) == [pytest.approx(size_pt, abs=0.01)] * 3
    for image, item in zip(labels.render_pages(template, visit(3), 600), visit(3), strict=True):
        assert [text for _, text in decode(image)] == [item.code]


def test_pdf_is_deterministic_and_rejects_empty_input():
    sheet = labels.load_template("sheet-a4")
    assert labels.render_pdf(sheet, visit(5), 203) == labels.render_pdf(sheet, visit(5), 203)
    with pytest.raises(ValueError, match="no labels"):
        labels.render_pdf(sheet, [], 203)


def test_pdf_cross_reference_table_points_at_its_objects():
    pdf = labels.render_pdf(labels.load_template("sheet-a4"), visit(2), 203)
    startxref = int(re.search(rb"startxref\n(\d+)\n%%EOF", pdf).group(1))
    assert pdf[startxref:].startswith(b"xref\n0 ")
    offsets = [int(m) for m in re.findall(rb"(\d{10}) 00000 n ", pdf[startxref:])]
    assert offsets
    for number, offset in enumerate(offsets, start=1):
        assert pdf[offset:].startswith(f"{number} 0 obj\n".encode())
