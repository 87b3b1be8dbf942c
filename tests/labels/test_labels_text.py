"""Human-readable text: sized in points, truncated with "…", never outside its box."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from labels_testdata import DPIS, LABEL_TEMPLATES, LONG_TEXT, aliquot, box, open_png

import labels
from labels.layout import plan_label
from labels.text import ELLIPSIS, FONT_DIR, FONT_FILES, fit_text, load_font
from labels.units import pt_to_dots


def _ink_box(font, text, x, baseline):
    left, top, right, bottom = font.getbbox(text, anchor="ls")
    return x + left, baseline + top, x + right, baseline + bottom


def _long_data(name):
    if name == "box-50x25":
        return box(name=LONG_TEXT, contents=LONG_TEXT)
    return aliquot(
        participant=LONG_TEXT,
        visit=LONG_TEXT,
        sample_type=LONG_TEXT,
        series="12345/67890 extra",
        date=LONG_TEXT,
    )


@pytest.mark.parametrize("name", LABEL_TEMPLATES)
@pytest.mark.parametrize("dpi", DPIS)
def test_text_stays_inside_its_box_measured_with_the_font(name, dpi):
    plan = plan_label(labels.load_template(name), _long_data(name), dpi)
    assert plan.texts
    for placed in plan.texts:
        font = load_font(placed.slot.field.font, placed.slot.size_px)
        left, top, right, bottom = _ink_box(font, placed.text, placed.x, placed.baseline)
        box = placed.box
        assert box.left <= left and right <= box.right, placed.text
        assert box.top <= top and bottom <= box.bottom, placed.text
        assert font.getlength(placed.text) <= box.width


@pytest.mark.parametrize("name", LABEL_TEMPLATES)
@pytest.mark.parametrize("dpi", DPIS)
def test_no_ink_outside_the_field_boxes(name, dpi):
    template = labels.load_template(name)
    data = _long_data(name)
    plan = plan_label(template, data, dpi)
    image = open_png(labels.render_png(template, data, dpi))
    mask = image.copy()
    boxes = [plan.symbol.box] + [t.box for t in plan.texts]
    for b in boxes:
        mask.paste(255, (b.left, b.top, b.right, b.bottom))
    assert mask.getextrema() == (255, 255), "black pixels outside every field box"


@pytest.mark.parametrize("dpi", DPIS)
def test_long_text_ends_with_an_ellipsis(dpi):
    plan = plan_label(labels.load_template("cryo-38x13"), _long_data("cryo-38x13"), dpi)
    texts = {p.slot.field.name: p.text for p in plan.texts}
    for name in ("participant", "visit", "sample_type", "date"):
        assert texts[name].endswith(ELLIPSIS)
        assert LONG_TEXT.startswith(texts[name][:-1])


def test_cap_label_keeps_the_end_of_the_code():
    plan = plan_label(labels.load_template("cryo-cap"), aliquot("7KQ2M9XWPR3A"), 300)
    (text,) = plan.texts
    assert text.text.startswith(ELLIPSIS)
    assert "7KQ2M9XWPR3A".endswith(text.text[1:])
    assert len(text.text) >= 5


def test_font_size_is_points_converted_at_the_dpi():
    template = labels.load_template("cryo-38x13")
    for dpi in DPIS:
        plan = plan_label(template, aliquot(), dpi)
        for placed in plan.texts:
            assert placed.slot.size_px == round(placed.slot.field.size_pt * dpi / 72)
    assert pt_to_dots(6, 300) == 25


def test_short_text_is_unchanged_and_missing_fields_are_blank():
    plan = plan_label(labels.load_template("cryo-38x13"), labels.LabelData("ABC123"), 300)
    assert [(p.slot.field.name, p.text) for p in plan.texts] == [("code", "ABC123")]
    plan = plan_label(labels.load_template("box-50x25"), labels.LabelData("BX-1", {"x": "1"}), 300)
    assert [p.text for p in plan.texts] == ["BX-1"]


def test_control_characters_become_spaces():
    assert fit_text("a\tb\nc", "sans", 20, 1000) == "a b c"


def test_fonts_ship_with_the_package_and_are_loaded_by_path():
    for file_name in FONT_FILES.values():
        assert (FONT_DIR / file_name).is_file()
    assert "Bitstream" in (FONT_DIR / "LICENSE").read_text()
    font = load_font("condensed", 20)
    assert font.path == str(FONT_DIR / FONT_FILES["condensed"])


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(st.sampled_from("AWMiljy 0123-/.,éÅ…_^~漢"), max_size=40),
    font=st.sampled_from(sorted(FONT_FILES)),
    size=st.integers(8, 60),
    width=st.integers(0, 400),
    side=st.sampled_from(["end", "start"]),
)
def test_fit_text_never_exceeds_the_width(text, font, size, width, side):
    fitted = fit_text(text, font, size, width, side)
    if fitted:
        real = load_font(font, size)
        left, _, right, _ = real.getbbox(fitted, anchor="ls")
        assert max(right, real.getlength(fitted)) - min(left, 0) <= width
    if fitted != text.strip():
        assert fitted in ("", ELLIPSIS) or fitted.startswith(ELLIPSIS) or fitted.endswith(ELLIPSIS)
