"""Plain data the renderers work from: label templates, sheets and label contents.

Everything here is immutable (templates are cached per resolution) and measured
in millimetres or points; conversion to printer dots happens in ``layout``.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

SYMBOLOGIES = ("code128", "datamatrix")
ALIGNMENTS = ("left", "center", "right")
ELLIPSIS_SIDES = ("end", "start")
SHAPES = ("rectangle", "round")


@dataclass(frozen=True)
class Box:
    """A rectangle on the label in millimetres, origin at the top-left corner."""

    x: float
    y: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    def overlaps(self, other: "Box") -> bool:
        """True if the two boxes share area (touching edges do not count)."""
        return (
            self.x < other.right
            and other.x < self.right
            and self.y < other.bottom
            and other.y < self.bottom
        )


@dataclass(frozen=True)
class Margins:
    """Unprintable border of the label in millimetres."""

    top: float
    right: float
    bottom: float
    left: float


@dataclass(frozen=True)
class SymbolField:
    """The barcode: always encodes ``LabelData.code``.

    The symbol (with its quiet zones) is centred in ``box``; bars of a Code 128
    span the full box height.
    """

    symbology: str
    box: Box
    min_module_mm: float
    max_module_mm: float | None = None


@dataclass(frozen=True)
class TextField:
    """One line of human-readable text, truncated with an ellipsis to fit ``box``."""

    name: str
    box: Box
    size_pt: float
    font: str = "condensed"
    align: str = "left"
    # "start" keeps the end of the text ("…WPR3A"): the distinguishing part of a code.
    ellipsis: str = "end"


@dataclass(frozen=True)
class Template:
    """A physical label: size, resolutions it is made for, and its fields."""

    name: str
    width_mm: float
    height_mm: float
    dpis: tuple[int, ...]
    margins: Margins
    symbol: SymbolField
    texts: tuple[TextField, ...]
    shape: str = "rectangle"
    description: str = ""
    source: str = field(default="", compare=False)

    # Templates key the per-dpi geometry cache; hashing the nested fields on
    # every label would cost more than rendering a ZPL label, so hash once.
    def __hash__(self) -> int:
        return self._hash

    @cached_property
    def _hash(self) -> int:
        return hash((self.name, self.width_mm, self.height_mm, self.symbol, self.texts))

    @property
    def field_names(self) -> tuple[str, ...]:
        """Data field names this template prints (``code`` first)."""
        names = ["code"]
        for text in self.texts:
            if text.name not in names:
                names.append(text.name)
        return tuple(names)


@dataclass(frozen=True)
class Sheet:
    """A page (A4, US Letter, ...) holding a grid of identical labels."""

    name: str
    page_width_mm: float
    page_height_mm: float
    label: Template
    columns: int
    rows: int
    offset_x_mm: float
    offset_y_mm: float
    pitch_x_mm: float
    pitch_y_mm: float
    description: str = ""
    source: str = field(default="", compare=False)

    @property
    def labels_per_page(self) -> int:
        return self.columns * self.rows

    @property
    def dpis(self) -> tuple[int, ...]:
        return self.label.dpis


@dataclass(frozen=True)
class LabelData:
    """What goes on one label: the code to encode and named text fields.

    Fields a template does not print are ignored; fields it prints but that are
    missing (or None) are left blank.
    """

    code: str
    fields: Mapping[str, str | None] = field(default_factory=dict)

    def text(self, name: str) -> str:
        """The text for field ``name``; ``code`` is the encoded code itself."""
        if name == "code":
            return self.code
        value = self.fields.get(name)
        return "" if value is None else str(value)
