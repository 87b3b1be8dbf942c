"""A preview of many labels shows every one of them, each at its true size."""

import pytest
from labels_testdata import DPIS, aliquot, box, decode, expected_format, open_png
from PIL import Image, ImageChops

import labels
from labels.contact import GAP_MM, LINER
from labels.units import mm_to_dots_floor

TEN = [f"7KQ2M9XW{n:04d}" for n in range(10)]
LABEL_TEMPLATES = ("cryo-38x13", "cryo-cap", "box-50x25")
SHEETS = ("sheet-a4", "sheet-letter")


def data_for(name: str, code: str) -> labels.LabelData:
    return box(code) if name == "box-50x25" else aliquot(code)


@pytest.mark.parametrize("name", LABEL_TEMPLATES + SHEETS)
@pytest.mark.parametrize("dpi", DPIS)
def test_a_contact_sheet_of_ten_labels_decodes_to_all_ten_codes(name, dpi):
    layout = labels.load_template(name)
    data = [data_for(name, code) for code in TEN]

    image = open_png(labels.render_contact_sheet(layout, data, dpi))

    template = layout.label if isinstance(layout, labels.Sheet) else layout
    assert sorted(decode(image)) == [(expected_format(template), code) for code in TEN]
    assert image.size == labels.contact_sheet_size(layout, 10, dpi)
    assert [round(v) for v in image.info["dpi"]] == [dpi, dpi]


@pytest.mark.parametrize("name", LABEL_TEMPLATES)
@pytest.mark.parametrize("dpi", DPIS)
def test_every_label_of_a_contact_sheet_is_the_label_itself_at_true_size(name, dpi):
    template = labels.load_template(name)
    data = [data_for(name, code) for code in TEN]
    gap = mm_to_dots_floor(GAP_MM, dpi)
    sheet = open_png(labels.render_contact_sheet(template, data, dpi))

    last = open_png(labels.render_png(template, data[-1], dpi)).convert("L")
    columns = (sheet.width - gap) // (last.width + gap)
    row, column = divmod(9, columns)
    left, top = gap + column * (last.width + gap), gap + row * (last.height + gap)
    placed = sheet.crop((left, top, left + last.width, top + last.height))

    if template.shape == "round":  # the corners outside the circle are the liner
        assert placed.getpixel((0, 0)) == LINER
        inside = (last.width // 5, last.height // 5, last.width * 4 // 5, last.height * 4 // 5)
        placed, last = placed.crop(inside), last.crop(inside)
    assert ImageChops.difference(placed, last).getbbox() is None
    assert sheet.getpixel((left - 1, top)) == LINER  # the gap before it


def test_labels_are_laid_out_about_a_page_wide_in_the_order_given():
    template = labels.load_template("cryo-38x13")
    dpi = 203
    width, height = labels.contact_sheet_size(template, 100, dpi)
    label_w, label_h, gap = 303, 103, mm_to_dots_floor(GAP_MM, dpi)
    assert (width, height) == (5 * label_w + 6 * gap, 20 * label_h + 21 * gap)
    image = open_png(
        labels.render_contact_sheet(template, [aliquot(c) for c in TEN[:6]], dpi)
    ).convert("L")
    second_row = image.crop((gap, 2 * gap + label_h, gap + label_w, 2 * gap + 2 * label_h))
    assert decode(second_row) == [(expected_format(template), TEN[5])]


def test_a_sheet_preview_shows_its_pages_one_below_the_other():
    sheet = labels.load_template("sheet-a4")
    dpi = 203
    data = [aliquot(f"P{n:05d}") for n in range(sheet.labels_per_page + 2)]
    image = open_png(labels.render_contact_sheet(sheet, data, dpi))
    [first, second] = labels.render_pages(sheet, data, dpi)
    gap = mm_to_dots_floor(GAP_MM, dpi)
    assert image.size == (first.width + 2 * gap, 2 * first.height + 3 * gap)
    top = 2 * gap + first.height
    shown = image.crop((gap, top, gap + second.width, top + second.height))
    assert ImageChops.difference(shown, second.convert("L")).getbbox() is None
    assert sorted(text for _, text in decode(shown)) == ["P00100", "P00101"]


def test_a_contact_sheet_larger_than_its_limit_is_refused_before_drawing(monkeypatch):
    template = labels.load_template("cryo-38x13")

    def no_drawing(*_args):
        raise AssertionError("drawn before the size was checked")

    monkeypatch.setattr("labels.contact.plan_label", no_drawing)
    width, height = labels.contact_sheet_size(template, 10, 600)
    with pytest.raises(ValueError, match=f"more than {width * height - 1}"):
        labels.render_contact_sheet(
            template, [aliquot(c) for c in TEN], 600, max_pixels=width * height - 1
        )


def test_a_contact_sheet_refuses_an_unprintable_code_and_a_resolution_of_no_template():
    template = labels.load_template("cryo-cap")
    with pytest.raises(labels.LabelError):
        labels.render_contact_sheet(template, [aliquot("A" * 60), aliquot("B")], 203)
    with pytest.raises(ValueError, match="150"):
        labels.contact_sheet_size(template, 2, 150)
    with pytest.raises(ValueError, match="no labels"):
        labels.render_contact_sheet(template, [], 203)


def test_one_label_alone_is_one_label_on_the_liner():
    template = labels.load_template("cryo-38x13")
    image = open_png(labels.render_contact_sheet(template, [aliquot()], 300))
    assert isinstance(image, Image.Image)
    label = open_png(labels.render_png(template, aliquot(), 300))
    gap = mm_to_dots_floor(GAP_MM, 300)
    assert image.size == (label.width + 2 * gap, label.height + 2 * gap)
