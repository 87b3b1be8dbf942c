"""ZPL II output, checked by a small parser of the commands we emit and golden files.

Set UPDATE_GOLDEN=1 to rewrite tests/labels/golden/*.zpl after an intended change.
"""

import math
import os
import re
from pathlib import Path

import pytest
from labels_testdata import DPIS, LABEL_TEMPLATES, LONG_TEXT, aliquot, box

import labels
from labels.code128 import encode_code128
from labels.layout import plan_label
from labels.sizing import min_module_dots

GOLDEN_DIR = Path(__file__).with_name("golden")


def golden_data(name: str) -> list[labels.LabelData]:
    if name == "box-50x25":
        return [box(), box("BX-0012345", name="Box ^~_ Ä 12", contents=LONG_TEXT)]
    return [
        aliquot(),
        aliquot("0012345678AB", participant="Ünïcode ^caret~tilde_under", visit=LONG_TEXT),
    ]


def parse_zpl(document: str) -> list[dict]:
    """Split ZPL into labels; each label: its commands plus ^FO...^FS fields."""
    parsed = []
    for body in re.findall(r"\^XA(.*?)\^XZ", document, flags=re.S):
        label = {"commands": {}, "fields": []}
        field = None
        for chunk in body.split("^")[1:]:
            chunk = chunk.rstrip("\n")
            name, params = chunk[:2], chunk[2:]
            if name == "FO":
                x, y = map(int, params.split(","))
                field = {"FO": (x, y)}
            elif name == "FS":
                label["fields"].append(field)
                field = None
            elif field is not None:
                field[name] = params
            else:
                label["commands"][name] = params
        parsed.append(label)
    return parsed


def bc_text(data: str) -> tuple[str, int]:
    """What a printer encodes for ^BC mode N data: (text, number of symbol values)."""
    subset, text, values, i = None, "", 1, 0
    starts = {">:": "B", ">;": "C"}
    switches = {">5": "C", ">6": "B"}
    first = data[:2]
    assert first in starts, data
    subset, i = starts[first], 2
    while i < len(data):
        pair = data[i : i + 2]
        if pair in switches:
            subset, i, values = switches[pair], i + 2, values + 1
        elif subset == "C":
            assert pair.isdigit()
            text, i, values = text + pair, i + 2, values + 1
        else:
            assert data[i] != ">"
            text, i, values = text + data[i], i + 1, values + 1
    return text, values


def unescape_fh(data: str) -> str:
    raw = re.sub(rb"_([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), data.encode())
    return raw.decode("utf-8")


@pytest.mark.parametrize("name", LABEL_TEMPLATES)
@pytest.mark.parametrize("dpi", DPIS)
def test_zpl_fields_lie_inside_the_label_at_the_right_sizes(name, dpi):
    template = labels.load_template(name)
    data = golden_data(name)
    document = labels.render_zpl(template, data, dpi).decode("utf-8")
    parsed = parse_zpl(document)
    assert len(parsed) == len(data)
    for label, item in zip(parsed, data, strict=True):
        plan = plan_label(template, item, dpi)
        width, height = int(label["commands"]["PW"]), int(label["commands"]["LL"])
        assert width == math.floor(template.width_mm * dpi / 25.4)
        assert height == math.floor(template.height_mm * dpi / 25.4)
        assert label["commands"]["CI"] == "28"
        symbols = [f for f in label["fields"] if "BC" in f or "BX" in f]
        assert len(symbols) == 1
        for field in label["fields"]:
            x, y = field["FO"]
            assert 0 <= x < width and 0 <= y < height
            if "BC" in field:
                _check_code128(field, item.code, width, height, plan)
            elif "BX" in field:
                _check_datamatrix(field, item.code, width, height, plan, dpi)
            else:
                _check_text(field, x, y, width, height, plan)


def _check_code128(field, code, width, height, plan):
    x, y = field["FO"]
    module = int(field["BY"])
    orientation, bar_height, *flags = field["BC"].split(",")
    assert (orientation, flags) == ("N", ["N", "N", "N", "N"])
    text, values = bc_text(field["FD"])
    assert text == code
    modules = 11 * (values + 1) + 13  # data values, check character, stop
    assert modules == encode_code128(code).width_modules
    assert module == plan.symbol.module >= 1
    assert x - 10 * module >= 0 and x + (modules + 10) * module <= width  # quiet zones
    assert y + int(bar_height) <= height


def _check_datamatrix(field, code, width, height, plan, dpi):
    x, y = field["FO"]
    orientation, module, quality, columns, rows, _, escape = field["BX"].split(",")
    module, size = int(module), int(columns)
    assert (orientation, quality, columns) == ("N", "200", rows)
    assert module == plan.symbol.module >= min_module_dots(0.25, dpi)
    assert field["FD"] == code and escape not in code
    assert x - module >= 0 and y - module >= 0
    assert x + (size + 1) * module <= width and y + (size + 1) * module <= height


def _check_text(field, x, y, width, height, plan):
    assert field["A0"].startswith("N,")
    size = int(field["A0"].split(",")[1])
    block_width, lines, _, align, _ = field["FB"].split(",")
    assert lines == "1" and align in "LCR"
    assert x + int(block_width) <= width and y + size <= height
    assert field["FH"] == "_"
    assert "^" not in field["FD"] and "~" not in field["FD"]
    placed = next(
        p
        for p in plan.texts
        if (p.box.left, p.box.width) == (x, int(block_width)) and p.box.top <= y < p.box.bottom
    )
    assert unescape_fh(field["FD"]) == placed.text
    assert size == min(placed.slot.size_px, placed.box.height)
    assert placed.box.top <= y and y + size <= placed.box.bottom


def test_cryo_label_width_at_203_dpi():
    document = labels.render_zpl(labels.load_template("cryo-38x13"), [aliquot()], 203).decode()
    assert "^PW303\n" in document and "^LL103\n" in document
    assert document.startswith("^XA\n^CI28\n") and document.endswith("^XZ\n")


def test_special_characters_are_hex_escaped():
    document = labels.render_zpl(
        labels.load_template("box-50x25"), [box(name="A^B~C_D")], 300
    ).decode()
    assert "^FH_^FDA_5EB_7EC_5FD^FS" in document
    assert "~" not in document


def test_zpl_is_deterministic():
    template = labels.load_template("cryo-38x13")
    data = golden_data("cryo-38x13")
    assert labels.render_zpl(template, data, 300) == labels.render_zpl(template, list(data), 300)


@pytest.mark.parametrize("name", LABEL_TEMPLATES)
@pytest.mark.parametrize("dpi", DPIS)
def test_zpl_matches_golden_file(name, dpi):
    output = labels.render_zpl(labels.load_template(name), golden_data(name), dpi)
    path = GOLDEN_DIR / f"{name}-{dpi}.zpl"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_bytes(output)
    assert path.exists(), f"missing {path}; run with UPDATE_GOLDEN=1 to create it"
    assert output == path.read_bytes()
