"""Reading and validating template TOML (shipped in labels/templates or an admin's own).

A file holds either a ``[label]`` table plus ``[[field]]`` tables, or a ``[sheet]``
table. Every problem raises ValueError("<file>: <key>: <what is wrong>") so an
admin can fix a template without reading this code; unknown keys are errors too.
Lengths are millimetres from the top-left corner, font sizes points.

[label]    name, width_mm, height_mm; optional description, shape ("rectangle" |
           "round"), dpi (subset of [203, 300, 600]), margin_mm (number or
           {top, right, bottom, left}).
[[field]]  name, kind ("code128" | "datamatrix" | "text"), x_mm, y_mm, width_mm,
           height_mm. Exactly one symbol field, named "code". Symbol options:
           min_module_mm (not below the symbology's minimum), max_module_mm.
           Text options: size_pt, font ("sans", "sans-bold", "condensed",
           "condensed-bold"), align ("left" | "center" | "right"), ellipsis
           ("end" | "start"). Boxes stay inside the margins and do not overlap.
[sheet]    name, label (a shipped label template), page ("A4" | "letter") or
           page_width_mm + page_height_mm, columns, rows, offset_x_mm,
           offset_y_mm, pitch_x_mm, pitch_y_mm; optional description.

See labels/templates/*.toml for annotated examples.
"""

import math
import tomllib
from functools import cache
from pathlib import Path

from labels.model import (
    ALIGNMENTS,
    ELLIPSIS_SIDES,
    SHAPES,
    SYMBOLOGIES,
    Box,
    Margins,
    Sheet,
    SymbolField,
    Template,
    TextField,
)
from labels.symbols import MIN_MODULE_MM
from labels.text import FONT_FILES, line_height_em
from labels.units import SUPPORTED_DPI, pt_to_mm

TEMPLATE_DIR = Path(__file__).with_name("templates")
PAGE_SIZES_MM = {"A4": (210.0, 297.0), "letter": (215.9, 279.4)}
_REQUIRED = object()


class _Table:
    """A TOML table that knows its key path, for error messages, and its unread keys."""

    def __init__(self, data: object, path: str, source: str):
        if not isinstance(data, dict):
            raise ValueError(f"{source}: {path}: expected a table")
        self.data, self.path, self.source = data, path, source
        self._unread = set(data)

    def error(self, key: str, problem: str) -> ValueError:
        return ValueError(f"{self.source}: {self.key(key)}: {problem}")

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, default: object = _REQUIRED) -> object:
        self._unread.discard(key)
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            raise self.error(key, "missing required key")
        return default

    def number(self, key: str, default: object = _REQUIRED, *, positive: bool = False) -> float:
        value = self.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {value!r}")
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise self.error(
                key,
                f"expected a {'positive' if positive else 'non-negative'} number, got {value!r}",
            )
        return float(value)

    def integer(self, key: str, minimum: int = 1) -> int:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"expected a whole number >= {minimum}, got {value!r}")
        return value

    def string(self, key: str, default: object = _REQUIRED, choices: tuple = ()) -> str:
        value = self.get(key, default)
        if not isinstance(value, str) or (not value and default is _REQUIRED):
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise self.error(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def table(self, key: str) -> "_Table":
        return _Table(self.get(key), self.key(key), self.source)

    def tables(self, key: str) -> list["_Table"]:
        value = self.get(key)
        if not isinstance(value, list) or not value:
            raise self.error(key, f"expected one or more [[{key}]] tables")
        return [_Table(item, f"{self.key(key)}[{i}]", self.source) for i, item in enumerate(value)]

    def done(self) -> None:
        """Reject keys nobody read: they are typos an admin wants to hear about."""
        if self._unread:
            key = sorted(self._unread)[0]
            known = ", ".join(sorted(set(self.data) - self._unread))
            raise self.error(key, f"unknown key (keys read here: {known})")


def template_names() -> list[str]:
    """Names of the templates and sheets shipped in labels/templates, sorted."""
    return sorted(path.stem for path in TEMPLATE_DIR.glob("*.toml"))


@cache
def load_template(name: str) -> Template | Sheet:
    """Load a shipped template or sheet by name, e.g. ``load_template("cryo-38x13")``."""
    if name not in template_names():
        raise ValueError(f"unknown template {name!r}; shipped: {', '.join(template_names())}")
    return load_template_file(TEMPLATE_DIR / f"{name}.toml")


def load_template_file(path: str | Path) -> Template | Sheet:
    """Load and validate a template or sheet from a TOML file (e.g. an admin's own)."""
    path = Path(path)
    return parse_template(path.read_text(encoding="utf-8"), source=str(path))


def parse_template(text: str, source: str = "<string>") -> Template | Sheet:
    """Validate TOML text as a template or sheet; ``source`` names it in errors."""
    try:
        root = _Table(tomllib.loads(text), "", source)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: invalid TOML: {exc}") from exc
    if ("label" in root.data) == ("sheet" in root.data):
        raise ValueError(f"{source}: label/sheet: expected exactly one [label] or [sheet] table")
    result = _parse_label(root) if "label" in root.data else _parse_sheet(root)
    root.done()
    return result


def _parse_label(root: _Table) -> Template:
    label = root.table("label")
    width, height = (
        label.number("width_mm", positive=True),
        label.number("height_mm", positive=True),
    )
    template = {
        "name": label.string("name"),
        "description": label.string("description", ""),
        "width_mm": width,
        "height_mm": height,
        "shape": label.string("shape", "rectangle", SHAPES),
        "dpis": _dpis(label),
        "margins": _margins(label),
    }
    label.done()
    area = _PrintableArea(width, height, template["margins"], template["shape"])
    symbols, texts = [], []
    for spec in root.tables("field"):
        kind = spec.string("kind", choices=("text", *SYMBOLOGIES))
        box = area.box(spec)
        if kind == "text":
            texts.append((spec, _text_field(spec, box)))
        else:
            symbols.append((spec, _symbol_field(spec, kind, box)))
        spec.done()
    if len(symbols) != 1:
        raise root.error(
            "field",
            f"expected exactly one symbol field (kind = code128 or "
            f"datamatrix), found {len(symbols)}",
        )
    _check_no_overlap(symbols + texts)
    return Template(
        **template,
        symbol=symbols[0][1],
        texts=tuple(text for _, text in texts),
        source=root.source,
    )


def _dpis(label: _Table) -> tuple[int, ...]:
    value = label.get("dpi", list(SUPPORTED_DPI))
    if not isinstance(value, list) or not value or any(not _is_dpi(v) for v in value):
        supported = ", ".join(map(str, SUPPORTED_DPI))
        raise label.error("dpi", f"expected a list of resolutions from {supported}, got {value!r}")
    return tuple(sorted(set(value)))


def _is_dpi(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value in SUPPORTED_DPI


def _margins(label: _Table) -> Margins:
    value = label.get("margin_mm", 0.0)
    if isinstance(value, dict):
        sides = label.table("margin_mm")
        margins = Margins(*(sides.number(side) for side in ("top", "right", "bottom", "left")))
        sides.done()
        return margins
    uniform = label.number("margin_mm", 0.0)
    return Margins(uniform, uniform, uniform, uniform)


class _PrintableArea:
    """The label minus its margins (and, for round labels, the inscribed ellipse)."""

    def __init__(self, width: float, height: float, margins: Margins, shape: str):
        self.left, self.top = margins.left, margins.top
        self.right, self.bottom = width - margins.right, height - margins.bottom
        self.shape = shape
        self.center = (width / 2, height / 2)
        self.radii = (
            width / 2 - max(margins.left, margins.right),
            height / 2 - max(margins.top, margins.bottom),
        )

    def box(self, spec: _Table) -> Box:
        box = Box(
            spec.number("x_mm"),
            spec.number("y_mm"),
            spec.number("width_mm", positive=True),
            spec.number("height_mm", positive=True),
        )
        eps = 1e-9
        if box.x < self.left - eps or box.right > self.right + eps:
            raise spec.error(
                "x_mm",
                f"box spans {box.x:g}..{box.right:g} mm across, outside "
                f"the printable {self.left:g}..{self.right:g} mm",
            )
        if box.y < self.top - eps or box.bottom > self.bottom + eps:
            raise spec.error(
                "y_mm",
                f"box spans {box.y:g}..{box.bottom:g} mm down, outside "
                f"the printable {self.top:g}..{self.bottom:g} mm",
            )
        if self.shape == "round" and not self._inside_ellipse(box):
            raise spec.error("x_mm", "box corners lie outside the round label's printable area")
        return box

    def _inside_ellipse(self, box: Box) -> bool:
        (cx, cy), (rx, ry) = self.center, self.radii
        corners = [(x, y) for x in (box.x, box.right) for y in (box.y, box.bottom)]
        return all(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1 + 1e-9 for x, y in corners)


def _symbol_field(spec: _Table, symbology: str, box: Box) -> SymbolField:
    if spec.string("name") != "code":
        raise spec.error("name", "the symbol field must be named 'code' (it encodes the code)")
    floor = MIN_MODULE_MM[symbology]
    minimum = spec.number("min_module_mm", floor, positive=True)
    if minimum < floor:
        raise spec.error(
            "min_module_mm",
            f"{symbology} modules below {floor} mm do not scan reliably, got {minimum}",
        )
    maximum = spec.number("max_module_mm", None, positive=True)
    if maximum is not None and maximum < minimum:
        raise spec.error("max_module_mm", f"must be >= min_module_mm ({minimum}), got {maximum}")
    return SymbolField(symbology, box, minimum, maximum)


def _text_field(spec: _Table, box: Box) -> TextField:
    field = TextField(
        name=spec.string("name"),
        box=box,
        size_pt=spec.number("size_pt", positive=True),
        font=spec.string("font", "condensed", tuple(FONT_FILES)),
        align=spec.string("align", "left", ALIGNMENTS),
        ellipsis=spec.string("ellipsis", "end", ELLIPSIS_SIDES),
    )
    line_mm = pt_to_mm(field.size_pt) * line_height_em(field.font)
    if line_mm > box.height + 1e-9:
        raise spec.error(
            "size_pt",
            f"{field.size_pt:g} pt {field.font} needs a "
            f"{line_mm:.2f} mm line but height_mm is {box.height:g}",
        )
    return field


def _check_no_overlap(fields: list[tuple[_Table, object]]) -> None:
    # Text over a symbol would break its quiet zone; text over text is unreadable.
    for i, (spec, field) in enumerate(fields):
        for other_spec, other in fields[:i]:
            if field.box.overlaps(other.box):
                raise ValueError(f"{spec.source}: {spec.path}: box overlaps {other_spec.path}")


def _parse_sheet(root: _Table) -> Sheet:
    sheet = root.table("sheet")
    name = sheet.string("name")
    page = sheet.get("page", None)
    if page is not None:
        page_width, page_height = PAGE_SIZES_MM.get(
            sheet.string("page", choices=tuple(PAGE_SIZES_MM))
        )
    else:
        page_width = sheet.number("page_width_mm", positive=True)
        page_height = sheet.number("page_height_mm", positive=True)
    label_name = sheet.string("label")
    label = load_template(label_name) if label_name in template_names() else None
    if not isinstance(label, Template):
        raise sheet.error(
            "label", f"expected the name of a shipped label template, got {label_name!r}"
        )
    grid = {key: sheet.integer(key) for key in ("columns", "rows")}
    place = {key: sheet.number(key) for key in ("offset_x_mm", "offset_y_mm")}
    pitch_x = sheet.number("pitch_x_mm", positive=True)
    pitch_y = sheet.number("pitch_y_mm", positive=True)
    for key, pitch, size in (
        ("pitch_x_mm", pitch_x, label.width_mm),
        ("pitch_y_mm", pitch_y, label.height_mm),
    ):
        if pitch < size:
            raise sheet.error(key, f"pitch {pitch:g} mm is smaller than the label ({size:g} mm)")
    for key, offset, count, pitch, size, page_size in (
        ("columns", place["offset_x_mm"], grid["columns"], pitch_x, label.width_mm, page_width),
        ("rows", place["offset_y_mm"], grid["rows"], pitch_y, label.height_mm, page_height),
    ):
        end = offset + (count - 1) * pitch + size
        if end > page_size + 1e-9:
            raise sheet.error(
                key, f"{count} labels end at {end:g} mm, beyond the {page_size:g} mm page"
            )
    result = Sheet(
        name=name,
        description=sheet.string("description", ""),
        page_width_mm=page_width,
        page_height_mm=page_height,
        label=label,
        pitch_x_mm=pitch_x,
        pitch_y_mm=pitch_y,
        source=root.source,
        **grid,
        **place,
    )
    sheet.done()
    return result
