"""Module size rule and refusing codes that would not scan."""

import re

import pytest
from labels_testdata import DPIS, aliquot, box

import labels
from labels.layout import plan_label
from labels.sizing import min_module_dots
from labels.symbols import MIN_MODULE_MM


@pytest.mark.parametrize(
    ("symbology", "dpi", "dots"),
    [
        ("code128", 203, 1),
        ("code128", 300, 2),
        ("code128", 600, 3),
        ("datamatrix", 203, 2),
        ("datamatrix", 300, 3),
        ("datamatrix", 600, 6),
    ],
)
def test_minimum_module_in_dots(symbology, dpi, dots):
    assert min_module_dots(MIN_MODULE_MM[symbology], dpi) == dots
    # Never below the physical minimum by more than the 1 % tolerance.
    assert dots * 25.4 / dpi >= MIN_MODULE_MM[symbology] * 0.99


@pytest.mark.parametrize("name", ["cryo-38x13", "cryo-cap", "box-50x25"])
@pytest.mark.parametrize("dpi", DPIS)
def test_module_is_an_integer_at_or_above_the_minimum(name, dpi):
    template = labels.load_template(name)
    data = box() if name == "box-50x25" else aliquot()
    module = plan_label(template, data, dpi).symbol.module
    assert type(module) is int
    assert module >= min_module_dots(template.symbol.min_module_mm, dpi)
    assert module <= 10  # ZPL ^BY limit


def test_box_label_respects_its_max_module():
    template = labels.load_template("box-50x25")
    module = plan_label(template, box("B1"), 203).symbol.module
    assert module * 25.4 / 203 <= template.symbol.max_module_mm


@pytest.mark.parametrize(("name", "length"), [("cryo-38x13", 30), ("cryo-cap", 60)])
@pytest.mark.parametrize("dpi", DPIS)
def test_too_long_code_raises_a_useful_label_error(name, length, dpi):
    template = labels.load_template(name)
    code = ("7KQ2M9XWPR3A" * 10)[:length]
    with pytest.raises(labels.LabelError) as caught:
        labels.render_png(template, aliquot(code), dpi)
    message = str(caught.value)
    assert repr(name) in message
    assert f"{dpi} dpi" in message
    assert f"({length} characters)" in message
    fits = int(re.search(r"at most (\d+) characters", message).group(1))
    # "What would fit" is true: that many characters print, one more does not.
    assert 0 < fits < length
    labels.render_png(template, aliquot(code[:fits]), dpi)
    with pytest.raises(labels.LabelError):
        labels.render_png(template, aliquot(code[: fits + 1]), dpi)


def test_longest_aliquot_code_fits_every_aliquot_template_and_dpi():
    for name in ("cryo-38x13", "cryo-cap"):
        for dpi in DPIS:
            plan_label(labels.load_template(name), aliquot("W" * 12), dpi)


def test_too_long_code_fails_zpl_and_pdf_too():
    template = labels.load_template("cryo-38x13")
    with pytest.raises(labels.LabelError):
        labels.render_zpl(template, [aliquot(), aliquot("X" * 40)], 203)
    with pytest.raises(labels.LabelError):
        labels.render_pdf(labels.load_template("sheet-a4"), [aliquot("X" * 40)], 203)


@pytest.mark.parametrize("code", ["", "AB CD", "AB^CD", "AB~CD", "A>B", "ÄBC", "AB\nCD"])
def test_codes_outside_the_safe_character_set_are_refused(code):
    with pytest.raises(labels.LabelError):
        labels.render_png(labels.load_template("cryo-38x13"), aliquot(code), 300)


def test_unsupported_dpi_is_refused():
    with pytest.raises(ValueError, match="203, 300, 600"):
        labels.render_png(labels.load_template("cryo-38x13"), aliquot(), 150)
