"""Shipped templates load; broken ones fail with the file and the key named."""

import pytest

import labels
from labels.loading import TEMPLATE_DIR

VALID = """
[label]
name = "test-40x20"
width_mm = 40
height_mm = 20
margin_mm = 1

[[field]]
name = "code"
kind = "code128"
x_mm = 1
y_mm = 1
width_mm = 38
height_mm = 10

[[field]]
name = "participant"
kind = "text"
x_mm = 1
y_mm = 12
width_mm = 38
height_mm = 4
size_pt = 8
"""

SECOND_SYMBOL = """
[[field]]
name = "code"
kind = "datamatrix"
x_mm = 1
y_mm = 16.5
width_mm = 2.4
height_mm = 2.4
"""


def test_shipped_templates():
    names = labels.template_names()
    for expected in ("cryo-38x13", "cryo-cap", "box-50x25", "sheet-a4", "sheet-letter"):
        assert expected in names
    for name in names:
        template = labels.load_template(name)
        assert template.name == name
        assert template.dpis == (203, 300, 600)


def test_aliquot_and_box_field_names():
    assert labels.load_template("cryo-38x13").field_names == (
        "code",
        "series",
        "participant",
        "visit",
        "sample_type",
        "date",
    )
    assert labels.load_template("cryo-cap").field_names == ("code",)
    assert labels.load_template("cryo-cap").symbol.symbology == "datamatrix"
    assert labels.load_template("box-50x25").field_names == ("code", "name", "contents")


@pytest.mark.parametrize(
    ("name", "page"), [("sheet-a4", (210, 297)), ("sheet-letter", (215.9, 279.4))]
)
def test_sheets_hold_a_96_aliquot_visit_on_one_page(name, page):
    sheet = labels.load_template(name)
    assert isinstance(sheet, labels.Sheet)
    assert (sheet.page_width_mm, sheet.page_height_mm) == page
    assert sheet.label.name == "cryo-38x13"
    assert sheet.labels_per_page >= 96


def test_valid_string_and_file_load(tmp_path):
    template = labels.parse_template(VALID, source="mine.toml")
    assert isinstance(template, labels.Template)
    assert template.source == "mine.toml"
    path = tmp_path / "mine.toml"
    path.write_text(VALID)
    assert labels.load_template_file(path) == template


def _broken(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (_broken("width_mm = 40\n", ""), "label.width_mm"),
        (_broken("width_mm = 40", 'width_mm = "wide"'), "label.width_mm"),
        (_broken("height_mm = 20", "height_mm = -3"), "label.height_mm"),
        (_broken("margin_mm = 1", "margin_mm = 1\ndpi = [150]"), "label.dpi"),
        (_broken("margin_mm = 1", "margin_mm = 1\nshape = 'oval'"), "label.shape"),
        (_broken("margin_mm = 1", "margin_mm = 1\ncolour = 'red'"), "label.colour"),
        (_broken('kind = "code128"', 'kind = "qr"'), "field[0].kind"),
        (_broken("size_pt = 8", 'size_pt = "big"'), "field[1].size_pt"),
        (_broken("size_pt = 8", "sise_pt = 8"), "field[1].size_pt"),
        (_broken("size_pt = 8", "size_pt = 8\nsize = 9"), "field[1].size"),
        (_broken("size_pt = 8", "size_pt = 14"), "field[1].size_pt"),
        (_broken("size_pt = 8", "size_pt = 8\nfont = 'comic'"), "field[1].font"),
        (_broken("size_pt = 8", "size_pt = 8\nalign = 'middle'"), "field[1].align"),
        (
            _broken("width_mm = 38\nheight_mm = 10", "width_mm = 39.5\nheight_mm = 10"),
            "field[0].x_mm",
        ),
        (_broken("y_mm = 12", "y_mm = 16.5"), "field[1].y_mm"),
        (_broken("y_mm = 12", "y_mm = 10"), "field[1]: box overlaps field[0]"),
        (VALID + SECOND_SYMBOL, "field: expected exactly one symbol field"),
        (_broken('kind = "code128"', 'kind = "text"\nsize_pt = 8'), "found 0"),
        (_broken('name = "code"', 'name = "sample"'), "field[0].name"),
        (
            _broken("height_mm = 10", "height_mm = 10\nmin_module_mm = 0.05"),
            "field[0].min_module_mm",
        ),
        (
            _broken("height_mm = 10", "height_mm = 10\nmax_module_mm = 0.1"),
            "field[0].max_module_mm",
        ),
        ("[label\nname=", "invalid TOML"),
        ("[other]\nx = 1", "expected exactly one [label] or [sheet]"),
    ],
)
def test_validation_errors_name_the_file_and_key(text, key):
    with pytest.raises(ValueError) as caught:
        labels.parse_template(text, source="admin/mine.toml")
    message = str(caught.value)
    assert message.startswith("admin/mine.toml: ")
    assert key in message


SHEET = """
[sheet]
name = "my-sheet"
page = "A4"
label = "cryo-38x13"
columns = 5
rows = 20
offset_x_mm = 6
offset_y_mm = 9
pitch_x_mm = 40
pitch_y_mm = 14
"""


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("pitch_x_mm = 40", "pitch_x_mm = 30", "sheet.pitch_x_mm"),
        ("rows = 20", "rows = 21", "sheet.rows"),
        ("columns = 5", "columns = 0", "sheet.columns"),
        ('label = "cryo-38x13"', 'label = "nope"', "sheet.label"),
        ('label = "cryo-38x13"', 'label = "sheet-a4"', "sheet.label"),
        ('page = "A4"', 'page = "A3"', "sheet.page"),
    ],
)
def test_sheet_validation_errors_name_the_key(old, new, key):
    assert labels.parse_template(SHEET).labels_per_page == 100
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        labels.parse_template(SHEET.replace(old, new), source="sheet.toml")


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(VALID.replace("size_pt = 8", "size_pt = 0"))
    with pytest.raises(ValueError, match=r"broken\.toml: field\[1\]\.size_pt"):
        labels.load_template_file(path)


def test_round_label_boxes_must_lie_inside_the_circle():
    text = (TEMPLATE_DIR / "cryo-cap.toml").read_text()
    with pytest.raises(ValueError, match=r"field\[0\]\.x_mm.*round"):
        labels.parse_template(text.replace("x_mm = 2.6", "x_mm = 0.5"))


def test_unknown_template_name():
    with pytest.raises(ValueError, match="unknown template"):
        labels.load_template("../secrets")
