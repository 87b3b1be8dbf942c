"""Every rendered label decodes, with an independent reader, to exactly its code."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from labels_testdata import (
    DPIS,
    LABEL_TEMPLATES,
    aliquot,
    codes_for,
    data_for,
    decode,
    expected_format,
    open_png,
)

import labels
from labels.layout import plan_label
from labels.sizing import min_module_dots
from labels.symbols import QUIET_ZONE_MODULES

CASES = [(name, dpi, code) for name in LABEL_TEMPLATES for dpi in DPIS for code in codes_for(name)]


@pytest.mark.parametrize(("name", "dpi", "code"), CASES)
def test_png_decodes_to_the_code(name, dpi, code):
    template = labels.load_template(name)
    image = open_png(labels.render_png(template, data_for(name, code), dpi))
    assert decode(image) == [(expected_format(template), code)]


@pytest.mark.parametrize("name", LABEL_TEMPLATES)
@pytest.mark.parametrize("dpi", DPIS)
def test_png_is_printer_sized_1_bit_with_dpi_metadata(name, dpi):
    template = labels.load_template(name)
    image = open_png(labels.render_png(template, data_for(name, codes_for(name)[0]), dpi))
    assert image.mode == "1"
    assert image.size == (int(template.width_mm * dpi / 25.4), int(template.height_mm * dpi / 25.4))
    assert [round(v) for v in image.info["dpi"]] == [dpi, dpi]


def _runs(row: list[int]) -> list[tuple[int, int]]:
    """(value, length) runs of a row of pixel values."""
    runs: list[tuple[int, int]] = []
    for value in row:
        if runs and runs[-1][0] == value:
            runs[-1] = (value, runs[-1][1] + 1)
        else:
            runs.append((value, 1))
    return runs


@pytest.mark.parametrize("name", ["cryo-38x13", "box-50x25"])
@pytest.mark.parametrize("dpi", DPIS)
def test_code128_bars_are_whole_modules_with_quiet_zones(name, dpi):
    template = labels.load_template(name)
    data = data_for(name, codes_for(name)[0])
    plan = plan_label(template, data, dpi)
    module = plan.symbol.module
    assert isinstance(module, int)
    assert module >= min_module_dots(template.symbol.min_module_mm, dpi)

    image = open_png(labels.render_png(template, data, dpi))
    box = plan.symbol.box
    middle = box.top + box.height // 2
    row = [image.getpixel((x, middle)) for x in range(box.left, box.right)]
    runs = _runs(row)
    # Measured from pixels: every bar and space is a multiple of the module,
    # the narrowest is exactly one module, and the margins are quiet zones.
    inner = runs[1:-1]
    assert all(length % module == 0 for _, length in inner)
    assert min(length for _, length in inner) == module
    quiet = QUIET_ZONE_MODULES["code128"] * module
    assert runs[0][0] != 0 and runs[0][1] >= quiet
    assert runs[-1][0] != 0 and runs[-1][1] >= quiet


@pytest.mark.parametrize("dpi", DPIS)
def test_datamatrix_modules_are_whole_dots_with_quiet_zone(dpi):
    template = labels.load_template("cryo-cap")
    data = aliquot()
    plan = plan_label(template, data, dpi)
    module = plan.symbol.module
    assert module >= min_module_dots(template.symbol.min_module_mm, dpi)
    image = open_png(labels.render_png(template, data, dpi))
    box = plan.symbol.box
    symbol_box = image.crop((box.left, box.top, box.right, box.bottom)).point(lambda v: 255 - v)
    left, top, right, bottom = symbol_box.getbbox()  # bounding box of the dark modules
    size = plan.symbol.datamatrix.size
    assert (right - left, bottom - top) == (size * module, size * module)
    assert min(left, top, box.width - right, box.height - bottom) >= module  # quiet zone


# Digits weighted up so runs of them exercise Code 128 code set C and switches.
code_alphabet = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ-" + "0123456789" * 3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(code=st.text(code_alphabet, min_size=1, max_size=12), dpi=st.sampled_from(DPIS))
def test_any_aliquot_code_decodes_on_both_symbologies(code, dpi):
    for name in ("cryo-38x13", "cryo-cap"):
        template = labels.load_template(name)
        image = open_png(labels.render_png(template, aliquot(code), dpi))
        assert decode(image) == [(expected_format(template), code)]
