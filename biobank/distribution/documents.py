"""Paper documents of a shipment: the pick list, the manifest (PDF and xlsx).

A pure module: plain dataclasses in, bytes out. No Flask, no database; the caller
queries, sorts, translates the column headings (``labels``) and formats the dates.

PDFs are drawn with fpdf2 in the DejaVu fonts shipped in ``labels/fonts`` (so µ, é, ›
and – print whatever the server has installed) and barcodes in the standard
Courier-Bold. They are laid out in two steps: every block (title, header fact, table
row, sub-heading...) is first placed on a page by :class:`_Flow`, which knows each
block's height, repeats column headings at the top of each page and keeps a heading with
what follows; the pages are then drawn knowing their total, so footers say "Page n of N"
without a placeholder. The creation date is fixed, so the same input gives the same bytes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from biobank import tabular
from biobank.tabular import clean_xml

FONT_DIR = Path(__file__).resolve().parents[2] / "labels" / "fonts"
ELLIPSIS = "\u2026"

DEFAULT_LABELS: Mapping[str, str] = {
    "box": "Box",
    "position": "Position",
    "barcode": "Barcode",
    "sample_type": "Sample type",
    "volume_ul": "Volume (µL)",
    "visit": "Visit",
    "participant": "Participant",
    "location": "Location",
    "picked": "Picked",
    "page": "Page",
    "of": "of",
    "total": "Total",
    "signature": "Packed by / date / signature",
    "received_signature": "Received by / date / signature",
    # Used in "Box 2 (1 tube)", "Box 3 (40 tubes)" and the manifest's total line.
    "tube": "tube",
    "tubes": "tubes",
}


@dataclass(frozen=True)
class PickLine:
    barcode: str
    sample_type: str  # "SER", "PL1" ...
    volume_ul: int
    participant: str  # pseudonymised study code, e.g. "LIM-0003"
    visit: str  # visit code, e.g. "M2"
    location: str  # "Freezer −80 n°1 › Shelf 2 › Rack A › Box 3", "" when not stored
    position: str  # "B4", may be ""
    picked: bool = False


@dataclass(frozen=True)
class DateFact:
    """A date and time among the header facts: ``text`` as the reader's language writes it
    (printed in the PDF), ``value`` the same moment as a naive local date-time (a real date
    cell of the workbook, shown with ``number_format``)."""

    text: str
    value: datetime
    number_format: str = "yyyy-mm-dd hh:mm"

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class DocumentHeader:
    title: str  # "Pick list — request R00012"
    reference: str  # "R00012"
    # (label, value) facts shown under the title; a value is text or a DateFact
    lines: tuple[tuple[str, str | DateFact], ...]
    generated: str  # formatted generation time, printed in the footer


@dataclass(frozen=True)
class ManifestLine:
    box_number: int
    position: str  # "A1" in the shipping box
    barcode: str
    sample_type: str
    volume_ul: int
    visit: str
    participant: str


def _labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    merged = dict(DEFAULT_LABELS)
    if labels:
        merged.update({key: value for key, value in labels.items() if value})
    return merged


def _tubes(count: int, labels: Mapping[str, str]) -> str:
    return f"{count} {labels['tube'] if count == 1 else labels['tubes']}"


# --------------------------------------------------------------------------------------
# Text fitting


_CUT_STRIP = " \t,;"


def fit_text(
    text: str,
    max_width: float,
    measure: Callable[[str], float],
    *,
    keep_end: bool = True,
    ellipsis: str = ELLIPSIS,
) -> str:
    """``text`` if it is at most ``max_width`` wide, else shortened with ``ellipsis``.

    ``keep_end`` keeps the end (a storage location's most specific part: "…Rack A › Box
    3"), otherwise the start ("Partici…"). ``measure`` gives a string's width, assumed
    to grow with the string. Returns "" when not even the ellipsis fits.
    """
    if measure(text) <= max_width:
        return text
    if measure(ellipsis) > max_width:
        return ""

    def shortened(kept: int) -> str:  # no space or comma next to the ellipsis
        if keep_end:
            return ellipsis + text[len(text) - kept :].lstrip(_CUT_STRIP)
        return text[:kept].rstrip(_CUT_STRIP) + ellipsis

    low, high = 0, len(text) - 1  # shortened(low) fits; find the largest that does
    while low < high:
        middle = (low + high + 1) // 2
        if measure(shortened(middle)) <= max_width:
            low = middle
        else:
            high = middle - 1
    return shortened(low)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_PLAIN_ASCII = re.compile(r"[\x20-\x7e]*")


def _one_line(value: Any) -> str:
    """A value as single-line text: control characters (newlines, tabs) become a space."""
    text = str(value)
    if not text.isprintable():
        text = _CONTROL.sub(" ", text)
    return text.strip()


# --------------------------------------------------------------------------------------
# PDF machinery

PAGE_W, PAGE_H = 210.0, 297.0
MARGIN = 12.0
CONTENT_W = PAGE_W - 2 * MARGIN
CONTENT_BOTTOM = PAGE_H - 16.0  # the footer lives below
FOOTER_BASELINE = PAGE_H - 8.0
PAD = 1.2  # horizontal padding inside a table cell

SANS = "DejaVuSansCondensed"
MONO = "Courier"  # standard PDF font: Courier-Bold for barcodes (ASCII only)
BODY_PT = 8.5
HEADING_PT = 8.0
MIN_PT = 6.0
ROW_H = 6.0
HEADING_H = 8.0
GRID_GREY = 190
SHADE_GREY = 232
TEXT_GREY = 90

FIXED_CREATION_DATE = datetime(2000, 1, 1, tzinfo=UTC)


class _Pdf(FPDF):
    """An A4 portrait FPDF in mm with the DejaVu fonts and fast cached text measurement."""

    def __init__(self, title: str, *, compress: bool) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.add_font(SANS, "", str(FONT_DIR / "DejaVuSansCondensed.ttf"))
        self.add_font(SANS, "B", str(FONT_DIR / "DejaVuSansCondensed-Bold.ttf"))
        self.set_creation_date(FIXED_CREATION_DATE)
        self.set_compression(compress)
        self.set_title(_one_line(title))
        self.set_creator("biobank")
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(False)
        self.c_margin = 0  # text starts at the margin; table cells pad themselves
        self.alias_nb_pages(None)  # page totals are known when drawing: no substitution
        self._char_widths: dict[tuple[str, str], dict[str, float]] = {}
        self.add_page()

    def use(self, family: str, style: str, size: float) -> None:
        self.set_font(family, style, size)

    def width(self, text: str) -> float:
        """Width of ``text`` in the current font, from per-character widths cached once.

        fpdf2's own measure (no text shaping, no kerning) is the sum of the character
        advances; caching them per font keeps a 2,000-row table cheap to measure.
        """
        advances = self._char_widths.setdefault((self.font_family, self.font_style), {})
        try:
            return sum(map(advances.__getitem__, text)) * self.font_size_pt
        except KeyError:
            for char in set(text) - advances.keys():
                advances[char] = self.get_string_width(char) / self.font_size_pt
            return sum(map(advances.__getitem__, text)) * self.font_size_pt

    def wrap(self, text: str, max_width: float) -> list[str]:
        """``text`` in lines no wider than ``max_width`` in the current font, broken at
        spaces; a word wider than a line is broken between characters. Nothing is cut:
        the lines joined by spaces give the text back (with single spaces)."""
        words = text.split()
        lines: list[str] = []
        current = ""
        for word in words:
            candidate = f"{current} {word}" if current else word
            if self.width(candidate) <= max_width:
                current = candidate
                continue
            if current:
                lines.append(current)
            while len(word) > 1 and self.width(word) > max_width:
                cut = self._longest_fitting(word, max_width)
                lines.append(word[:cut])
                word = word[cut:]
            current = word
        if current:
            lines.append(current)
        return lines

    def _longest_fitting(self, word: str, max_width: float) -> int:
        """How many first characters of ``word`` fit (at least one)."""
        low, high = 1, len(word)
        while low < high:
            middle = (low + high + 1) // 2
            if self.width(word[:middle]) <= max_width:
                low = middle
            else:
                high = middle - 1
        return low

    def fitted(
        self, text: str, max_width: float, *, keep_end: bool = False, min_pt: float | None = None
    ) -> tuple[str, float]:
        """``text`` fitted into ``max_width``, and its width: the font is first shrunk
        down to ``min_pt`` (when given), then the text shortened with an ellipsis. Leaves
        the font as used."""
        width = self.width(text)
        if width <= max_width:
            return text, width
        if min_pt is not None and self.font_size_pt > min_pt:
            size = max(min_pt, self.font_size_pt * max_width / width * 0.999)
            self.use(self.font_family, self.font_style, size)
            width = self.width(text)
            if width <= max_width:
                return text, width
        text = fit_text(text, max_width, self.width, keep_end=keep_end)
        return text, self.width(text)

    def cell_text(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        text: str,
        *,
        align: str = "L",
        keep_end: bool = False,
        min_pt: float | None = None,
    ) -> None:
        """Write one line of ``text`` vertically centred in the box (x, y, w, h), never
        wider than the box (less padding)."""
        text = _one_line(text)
        if not text:
            return
        room = w - (3.5 if align == "R" else 2) * PAD
        text, width = self.fitted(text, room, keep_end=keep_end, min_pt=min_pt)
        if not text:
            return
        if align == "R":  # more room on the right: numbers stand clear of the next column
            tx = x + w - 2.5 * PAD - width
        elif align == "C":
            tx = x + (w - width) / 2
        else:
            tx = x + PAD
        self.text(tx, y + h / 2 + 0.35 * self.font_size, text)

    def hline(self, x1: float, x2: float, y: float, grey: int = GRID_GREY) -> None:
        self.set_draw_color(grey)
        self.line(x1, y, x2, y)
        self.set_draw_color(0)


Draw = Callable[..., None]


class _Flow:
    """Places blocks of known height on pages, top to bottom.

    ``repeat`` blocks (column headings, a box's sub-heading) are placed again at the top
    of every new page while set. A block with ``keep`` needs that much more room below
    it (what must follow it on the same page). A page break never leaves a page holding
    only repeated blocks, so a block taller than a page cannot loop.
    """

    def __init__(self, top: float = MARGIN, bottom: float = CONTENT_BOTTOM) -> None:
        self.top, self.bottom = top, bottom
        self.pages: list[list[tuple[float, Draw, tuple]]] = [[]]
        self.y = top
        self.fresh = True  # nothing but repeated blocks on the current page
        self.repeat: list[tuple[float, Draw, tuple]] = []

    def place(self, height: float, draw: Draw, *args: Any, keep: float = 0.0) -> None:
        if self.y + height + keep > self.bottom and not self.fresh:
            self.new_page()
        self.pages[-1].append((self.y, draw, args))
        self.y += height
        self.fresh = False

    def space(self, height: float) -> None:
        if not self.fresh:
            self.y += height

    def new_page(self) -> None:
        self.pages.append([])
        self.y = self.top
        for height, draw, args in self.repeat:
            self.pages[-1].append((self.y, draw, args))
            self.y += height
        self.fresh = True

    def render(self, pdf: _Pdf, footer: Callable[[_Pdf, int, int], None]) -> None:
        total = len(self.pages)
        for number, blocks in enumerate(self.pages, start=1):
            if number > 1:
                pdf.add_page()
            for y, draw, args in blocks:
                draw(pdf, y, *args)
            footer(pdf, number, total)


@dataclass(frozen=True)
class _Column:
    key: str
    width: float
    align: str = "L"

    @property
    def room(self) -> float:
        """The width text may take (right-aligned numbers keep clear of the next column)."""
        return self.width - (3.5 if self.align == "R" else 2) * PAD


def _columns_x(columns: Sequence[_Column]) -> list[float]:
    xs, x = [], MARGIN
    for column in columns:
        xs.append(x)
        x += column.width
    return xs


MM_PER_PT = 25.4 / 72
LINE_SPACING = 1.2
CELL_PAD_Y = 1.0
# The most a column grows to hold its longest word; a longer word breaks between
# characters rather than squeezing the others out.
WIDEST_COLUMN = 40.0
NARROWEST_FLEXIBLE = 30.0


def _line_height(size_pt: float) -> float:
    return size_pt * MM_PER_PT * LINE_SPACING


@dataclass(frozen=True)
class _Text:
    """Text laid out for a cell: its lines, in one font."""

    lines: tuple[str, ...]
    family: str
    style: str
    size: float
    align: str = "L"

    @property
    def height(self) -> float:
        return len(self.lines) * _line_height(self.size)


def _lay_out(
    pdf: _Pdf,
    text: Any,
    column: _Column,
    *,
    family: str = SANS,
    style: str = "",
    size: float = BODY_PT,
    shrink: bool = False,
) -> _Text:
    """``text`` wrapped into ``column``: every character printed, none cut. With
    ``shrink`` (a barcode, better read on one line), the font first shrinks down to
    MIN_PT."""
    text = _one_line(text)
    pdf.use(family, style, size)
    if shrink and text and pdf.width(text) > column.room:
        size = max(MIN_PT, size * column.room / pdf.width(text) * 0.999)
        pdf.use(family, style, size)
    return _Text(tuple(pdf.wrap(text, column.room)), family, style, size, column.align)


def _draw_text(pdf: _Pdf, x: float, y: float, w: float, h: float, text: _Text) -> None:
    """The lines of ``text`` in the box (x, y, w, h), the block centred vertically."""
    if not text.lines:
        return
    pdf.use(text.family, text.style, text.size)
    line_h = _line_height(text.size)
    top = y + (h - text.height) / 2
    for number, line in enumerate(text.lines):
        width = pdf.width(line)
        if text.align == "R":
            tx = x + w - 2.5 * PAD - width
        elif text.align == "C":
            tx = x + (w - width) / 2
        else:
            tx = x + PAD
        pdf.text(tx, top + number * line_h + line_h / 2 + 0.35 * pdf.font_size, line)


def _fit_columns(
    pdf: _Pdf,
    columns: Sequence[_Column],
    labels: Mapping[str, str],
    values: Mapping[str, Iterable[Any]],
    flexible: str,
) -> tuple[_Column, ...]:
    """The columns widened to hold their longest word (of the heading, in the reader's
    language, and of ``values``), the room taken from the ``flexible`` column, whose text
    wraps. What still does not fit breaks between characters, never cut."""
    needed = {}
    for column in columns:
        pad = column.width - column.room
        pdf.use(SANS, "B", HEADING_PT)
        widest = max((pdf.width(w) for w in _one_line(labels[column.key]).split()), default=0)
        if column.key != flexible:
            pdf.use(SANS, "", BODY_PT)
            words = {w for value in values.get(column.key, ()) for w in _one_line(value).split()}
            widest = max([widest, *(pdf.width(w) for w in words)])
        needed[column.key] = min(WIDEST_COLUMN, widest + pad + 0.1)
    widths = {c.key: max(c.width, needed[c.key]) for c in columns}
    over = sum(widths.values()) - CONTENT_W
    if over > 0:
        floor = max(NARROWEST_FLEXIBLE, needed[flexible])
        taken = min(over, max(0.0, widths[flexible] - floor))
        widths[flexible] -= taken
        over -= taken
    if over > 0:  # still too wide: every column gives up its share
        total = sum(widths.values())
        widths = {key: width * CONTENT_W / total for key, width in widths.items()}
    return tuple(_Column(c.key, widths[c.key], c.align) for c in columns)


@dataclass(frozen=True)
class _Headings:
    columns: tuple[_Column, ...]
    texts: tuple[_Text, ...]
    height: float


def _headings(pdf: _Pdf, columns: tuple[_Column, ...], labels: Mapping[str, str]) -> _Headings:
    texts = tuple(_lay_out(pdf, labels[c.key], c, style="B", size=HEADING_PT) for c in columns)
    height = max(HEADING_H, max(t.height for t in texts) + 2 * CELL_PAD_Y)
    return _Headings(columns, texts, height)


def _draw_column_headings(pdf: _Pdf, y: float, headings: _Headings) -> None:
    pdf.set_fill_color(SHADE_GREY)
    pdf.rect(MARGIN, y, CONTENT_W, headings.height, style="F")
    pdf.set_fill_color(0)
    for x, column, text in zip(
        _columns_x(headings.columns), headings.columns, headings.texts, strict=True
    ):
        _draw_text(pdf, x, y, column.width, headings.height, text)
    pdf.set_line_width(0.3)
    pdf.hline(MARGIN, MARGIN + CONTENT_W, y + headings.height, grey=0)
    pdf.set_line_width(0.2)


def _barcode(pdf: _Pdf, barcode: str, column: _Column) -> _Text:
    barcode = _one_line(barcode)
    if _PLAIN_ASCII.fullmatch(barcode):
        return _lay_out(pdf, barcode, column, family=MONO, style="B", size=BODY_PT + 1, shrink=True)
    return _lay_out(pdf, barcode, column, style="B", shrink=True)


def _row_height(texts: Iterable[_Text]) -> float:
    return max(ROW_H, max((t.height for t in texts), default=0) + 2 * CELL_PAD_Y)


def _draw_row(
    pdf: _Pdf, y: float, columns: tuple[_Column, ...], texts: dict[str, _Text], height: float
) -> None:
    for x, column in zip(_columns_x(columns), columns, strict=True):
        if column.key in texts:
            _draw_text(pdf, x, y, column.width, height, texts[column.key])
    pdf.hline(MARGIN, MARGIN + CONTENT_W, y + height)


def _title_and_facts(flow: _Flow, pdf: _Pdf, header: DocumentHeader) -> None:
    """Place the title and the (label, value) header lines, both wrapped."""
    pdf.use(SANS, "B", 14)
    title = str(header.title).strip()
    title_lines = pdf.multi_cell(CONTENT_W, 7, title, dry_run=True, output=MethodReturnValue.LINES)
    flow.place(7 * len(title_lines) + 3, _draw_title, title)

    label_w = 48.0
    value_w = CONTENT_W - label_w
    for label, value in header.lines:
        pdf.use(SANS, "B", 9.5)
        label_lines = pdf.wrap(_one_line(label), label_w - 2 * PAD)
        pdf.use(SANS, "", 9.5)
        value = str(value).strip()
        lines = pdf.multi_cell(
            value_w, 5, value or " ", dry_run=True, output=MethodReturnValue.LINES
        )
        height = 5 * max(1, len(lines), len(label_lines))
        flow.place(height, _draw_fact, label_lines, value, value_w)
    flow.space(4)


def _draw_title(pdf: _Pdf, y: float, title: str) -> None:
    pdf.use(SANS, "B", 14)
    pdf.set_xy(MARGIN, y)
    pdf.multi_cell(CONTENT_W, 7, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_line_width(0.4)
    pdf.hline(MARGIN, MARGIN + CONTENT_W, pdf.get_y() + 1, grey=0)
    pdf.set_line_width(0.2)


def _draw_fact(pdf: _Pdf, y: float, label_lines: list[str], value: str, value_w: float) -> None:
    pdf.use(SANS, "B", 9.5)
    for number, line in enumerate(label_lines):
        pdf.cell_text(MARGIN - PAD, y + 5 * number, 48.0, 5, line)
    if value:
        pdf.use(SANS, "", 9.5)
        pdf.set_xy(MARGIN + 48.0, y)
        pdf.multi_cell(value_w, 5, value, padding=0)


def _footer(header: DocumentHeader, labels: Mapping[str, str]) -> Callable[[_Pdf, int, int], None]:
    reference = _one_line(header.reference)
    generated = _one_line(header.generated)
    left = " · ".join(part for part in (reference, generated) if part)

    def draw(pdf: _Pdf, number: int, total: int) -> None:
        pdf.hline(MARGIN, MARGIN + CONTENT_W, FOOTER_BASELINE - 4)
        pdf.set_text_color(TEXT_GREY)
        pdf.use(SANS, "", 7.5)
        page = f"{labels['page']} {number} {labels['of']} {total}"
        page_w = pdf.width(page)
        pdf.text(MARGIN + CONTENT_W - page_w, FOOTER_BASELINE, page)
        if left:
            pdf.text(
                MARGIN,
                FOOTER_BASELINE,
                pdf.fitted(left, CONTENT_W - page_w - 8)[0],
            )
        pdf.set_text_color(0)

    return draw


def _draw_line_of_text(pdf: _Pdf, y: float, text: str, style: str, size: float) -> None:
    pdf.use(SANS, style, size)
    pdf.cell_text(MARGIN - PAD, y, CONTENT_W + 2 * PAD, 7, text)


# --------------------------------------------------------------------------------------
# Pick list

PICK_COLUMNS = (
    _Column("picked", 10, "C"),
    _Column("location", 68),
    _Column("position", 14),
    _Column("barcode", 32),
    _Column("sample_type", 14),
    _Column("volume_ul", 15, "R"),
    _Column("participant", 19),
    _Column("visit", 14),
)
CHECKBOX = 3.6


def _lay_out_row(
    pdf: _Pdf, columns: tuple[_Column, ...], line: PickLine | ManifestLine
) -> tuple[float, dict[str, _Text]]:
    """A pick-list or manifest line laid out column by column: each column shows the
    line's attribute of its name, the barcode in its own type; the pick list's "picked"
    column is a box drawn with the row."""
    texts = {
        column.key: (_barcode if column.key == "barcode" else _lay_out)(
            pdf, str(getattr(line, column.key)), column
        )
        for column in columns
        if column.key != "picked"
    }
    return _row_height(texts.values()), texts


def _draw_pick_row(
    pdf: _Pdf,
    y: float,
    columns: tuple[_Column, ...],
    texts: dict[str, _Text],
    height: float,
    picked: bool,
) -> None:
    box_x = MARGIN + (columns[0].width - CHECKBOX) / 2
    box_y = y + (height - CHECKBOX) / 2
    pdf.rect(box_x, box_y, CHECKBOX, CHECKBOX)
    if picked:
        pdf.set_line_width(0.5)
        pdf.line(box_x + 0.7, box_y + 1.9, box_x + 1.5, box_y + 2.9)
        pdf.line(box_x + 1.5, box_y + 2.9, box_x + 3.1, box_y + 0.6)
        pdf.set_line_width(0.2)
    _draw_row(pdf, y, columns, texts, height)


def pick_list_pdf(
    header: DocumentHeader,
    lines: Sequence[PickLine],
    *,
    labels: Mapping[str, str] | None = None,
    compress: bool = True,
) -> bytes:
    """The pick list: one row per tube to fetch, in the given order, with a box to tick.

    A4 portrait. Every cell wraps rather than being cut: a long location takes two or
    three lines, whole, so two freezers never look alike; column headings wrap in the
    reader's language. The last row is followed by the count of lines and of lines
    already picked.
    """
    labels = _labels(labels)
    pdf = _Pdf(header.title, compress=compress)
    pdf.set_line_width(0.2)
    flow = _Flow()
    _title_and_facts(flow, pdf, header)

    values = {
        "position": {line.position for line in lines},
        "sample_type": {line.sample_type for line in lines},
        "volume_ul": {str(line.volume_ul) for line in lines},
        "participant": {line.participant for line in lines},
        "visit": {line.visit for line in lines},
    }
    columns = _fit_columns(pdf, PICK_COLUMNS, labels, values, "location")
    headings = _headings(pdf, columns, labels)
    flow.place(headings.height, _draw_column_headings, headings, keep=ROW_H)
    flow.repeat = [(headings.height, _draw_column_headings, (headings,))]
    for line in lines:
        height, texts = _lay_out_row(pdf, columns, line)
        flow.place(height, _draw_pick_row, columns, texts, height, line.picked)
    flow.repeat = []

    picked = sum(1 for line in lines if line.picked)
    summary = f"{labels['total']}: {len(lines)}    {labels['picked']}: {picked}"
    flow.space(2)
    flow.place(8, _draw_line_of_text, summary, "B", 9.5)

    flow.render(pdf, _footer(header, labels))
    return bytes(pdf.output())


# --------------------------------------------------------------------------------------
# Manifest

MANIFEST_COLUMNS = (
    _Column("position", 20),
    _Column("barcode", 44),
    _Column("sample_type", 26),
    _Column("volume_ul", 24, "R"),
    _Column("visit", 26),
    _Column("participant", 46),
)
SIGNATURE_H = 28.0


def _by_box(lines: Iterable[ManifestLine]) -> dict[int, list[ManifestLine]]:
    """Lines grouped by shipping box, boxes in order of first appearance."""
    boxes: dict[int, list[ManifestLine]] = {}
    for line in lines:
        boxes.setdefault(line.box_number, []).append(line)
    return boxes


def _draw_signatures(pdf: _Pdf, y: float, left: str, right: str) -> None:
    gap = 6.0
    w = (CONTENT_W - gap) / 2
    y += 4
    pdf.set_line_width(0.3)
    for x, label in ((MARGIN, left), (MARGIN + w + gap, right)):
        pdf.rect(x, y, w, SIGNATURE_H)
        pdf.use(SANS, "", 8)
        pdf.cell_text(x, y, w, 6, label, min_pt=MIN_PT)
    pdf.set_line_width(0.2)


def manifest_pdf(
    header: DocumentHeader,
    lines: Sequence[ManifestLine],
    *,
    labels: Mapping[str, str] | None = None,
    compress: bool = True,
) -> bytes:
    """The shipment manifest: a table per shipping box, the totals, two signature boxes.
    Cells and headings wrap, never cut."""
    labels = _labels(labels)
    pdf = _Pdf(header.title, compress=compress)
    pdf.set_line_width(0.2)
    flow = _Flow()
    _title_and_facts(flow, pdf, header)

    values = {
        "position": {line.position for line in lines},
        "sample_type": {line.sample_type for line in lines},
        "volume_ul": {str(line.volume_ul) for line in lines},
        "visit": {line.visit for line in lines},
    }
    columns = _fit_columns(pdf, MANIFEST_COLUMNS, labels, values, "participant")
    headings = _headings(pdf, columns, labels)
    for number, box_lines in _by_box(lines).items():
        heading = f"{labels['box']} {number} ({_tubes(len(box_lines), labels)})"
        flow.space(2)
        flow.place(8, _draw_line_of_text, heading, "B", 10.5, keep=headings.height + ROW_H)
        flow.place(headings.height, _draw_column_headings, headings)
        flow.repeat = [
            (8, _draw_line_of_text, (heading, "B", 10.5)),
            (headings.height, _draw_column_headings, (headings,)),
        ]
        for line in box_lines:
            height, texts = _lay_out_row(pdf, columns, line)
            flow.place(height, _draw_row, columns, texts, height)
        flow.repeat = []
        flow.space(2)

    volume = sum(int(line.volume_ul) for line in lines)
    total = f"{labels['total']}: {_tubes(len(lines), labels)}, {volume} µL"
    flow.space(2)
    flow.place(8, _draw_line_of_text, total, "B", 10.5)
    flow.place(SIGNATURE_H + 4, _draw_signatures, labels["signature"], labels["received_signature"])

    flow.render(pdf, _footer(header, labels))
    return bytes(pdf.output())


# --------------------------------------------------------------------------------------
# Manifest workbook

# A row letter, then the column: "B4", and the other shapes the storage module writes or
# reads: "B04" (zero-padded in boxes of 10+ columns), "b 4", "B-4", "B:4", "B/4".
_POSITION = re.compile(r"([A-Z])\s*[-:/]?\s*0*([1-9][0-9]{0,2})")
_BOLD = Font(bold=True)
_TEXT_FORMAT = "@"


def _parse_position(position: str) -> tuple[int, int] | None:
    """ "B12" -> (2, 12): 1-based row (A-Z) and column; None when not of that form."""
    match = _POSITION.fullmatch(position.strip().upper())
    if match is None:
        return None
    return ord(match[1]) - ord("A") + 1, int(match[2])


def _text_cell(ws: Any, value: str, *, bold: bool = False) -> Any:
    """A text for a write-only row, stored as text: "=...", "+33" and "#N/A" are never a
    formula or an error, whoever typed them (biobank/tabular.py quotes what could start
    a formula)."""
    return tabular.xlsx_cell(ws, value, font=_BOLD if bold else None)


def _fact_cell(ws: Any, value: str | DateFact) -> Any:
    """A header fact's value: a date as a real date cell with its number format."""
    if not isinstance(value, DateFact):
        return _text_cell(ws, value)
    return tabular.xlsx_cell(
        ws, value.value.replace(tzinfo=None), number_format=value.number_format
    )


def _bold_cell(ws: Any, value: int) -> Any:
    return tabular.xlsx_cell(ws, value, font=_BOLD)


def _width(values: Iterable[Any], minimum: float = 6, maximum: float = 45) -> float:
    longest = max((len(str(value)) for value in values), default=0)
    return min(maximum, max(minimum, longest + 2))


def manifest_xlsx(
    header: DocumentHeader,
    lines: Sequence[ManifestLine],
    *,
    labels: Mapping[str, str] | None = None,
) -> bytes:
    """The manifest as a workbook.

    Sheet "Manifest": the title, the header facts as (label, value) rows, a blank row,
    then one row per tube in the given order under bold headings (box, position,
    barcode, sample type, volume µL, visit, participant), frozen below the headings and
    with an autofilter. Sheet "Boxes": one grid per shipping box, rows A-Z by column
    numbers, sized to the box's highest row letter and column number, a barcode per cell.
    """
    labels = _labels(labels)
    wb = Workbook(write_only=True)
    _manifest_sheet(wb, header, lines, labels)
    _boxes_sheet(wb, lines, labels)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


MANIFEST_KEYS = ("box", "position", "barcode", "sample_type", "volume_ul", "visit", "participant")


def _manifest_sheet(
    wb: Workbook,
    header: DocumentHeader,
    lines: Sequence[ManifestLine],
    labels: Mapping[str, str],
) -> None:
    ws = wb.create_sheet("Manifest")
    facts = [
        (clean_xml(label), value if isinstance(value, DateFact) else clean_xml(value))
        for label, value in header.lines
    ]
    heading_row = 1 + len(facts) + 2  # title, facts, blank row
    last_row = heading_row + len(lines)

    headings = [labels[key] for key in MANIFEST_KEYS]
    columns: list[list[Any]] = [
        [line.box_number for line in lines],
        [line.position for line in lines],
        [line.barcode for line in lines],
        [line.sample_type for line in lines],
        [line.volume_ul for line in lines],
        [line.visit for line in lines],
        [line.participant for line in lines],
    ]
    # Widths must be set before the first row of a write-only sheet.
    for index, (heading, values) in enumerate(zip(headings, columns, strict=True), start=1):
        extra: list[str] = [heading]
        if index == 1:
            extra += [label for label, _ in facts]
        if index == 2:  # a date fact's cell must show its whole date, never ####
            extra += [value.number_format for _, value in facts if isinstance(value, DateFact)]
        ws.column_dimensions[get_column_letter(index)].width = _width([*extra, *values])
    # Barcodes are written as strings; the column's text format keeps a barcode typed in
    # by hand ("000123") from turning into a number. Cheaper than styling every cell.
    ws.column_dimensions["C"].number_format = _TEXT_FORMAT
    ws.freeze_panes = f"A{heading_row + 1}"
    ws.auto_filter.ref = (
        f"A{heading_row}:{get_column_letter(len(headings))}{max(last_row, heading_row)}"
    )

    ws.append([_text_cell(ws, header.title, bold=True)])
    for label, value in facts:
        ws.append([_text_cell(ws, label, bold=True), _fact_cell(ws, value)])
    ws.append([])
    ws.append([_text_cell(ws, heading, bold=True) for heading in headings])
    for line in lines:
        ws.append(
            [
                int(line.box_number),
                _text_cell(ws, line.position),
                _text_cell(ws, line.barcode),
                _text_cell(ws, line.sample_type),
                int(line.volume_ul),
                _text_cell(ws, line.visit),
                _text_cell(ws, line.participant),
            ]
        )


def _boxes_sheet(wb: Workbook, lines: Sequence[ManifestLine], labels: Mapping[str, str]) -> None:
    ws = wb.create_sheet("Boxes")
    grids = []
    widest, longest = 1, 8
    for number, box_lines in _by_box(lines).items():
        cells: dict[tuple[int, int], list[str]] = {}
        unplaced: list[ManifestLine] = []
        for line in box_lines:
            where = _parse_position(line.position)
            if where is None:
                unplaced.append(line)
            else:
                cells.setdefault(where, []).append(clean_xml(line.barcode))
            longest = max(longest, len(line.barcode))
        rows = max((row for row, _ in cells), default=0)
        cols = max((col for _, col in cells), default=0)
        widest = max(widest, cols)
        grids.append((number, len(box_lines), rows, cols, cells, unplaced))

    # Column A: row letters, and the position of a tube whose position is not a grid cell.
    odd_positions = [line.position for *_, unplaced in grids for line in unplaced]
    ws.column_dimensions["A"].width = _width(odd_positions, minimum=5)
    for col in range(2, widest + 2):
        ws.column_dimensions[get_column_letter(col)].width = min(45, longest + 2)
        ws.column_dimensions[get_column_letter(col)].number_format = _TEXT_FORMAT

    for number, count, rows, cols, cells, unplaced in grids:
        ws.append(
            [_text_cell(ws, f"{labels['box']} {number} ({_tubes(count, labels)})", bold=True)]
        )
        if cols:
            ws.append([None, *(_bold_cell(ws, col) for col in range(1, cols + 1))])
        for row in range(1, rows + 1):
            values: list[Any] = [_text_cell(ws, chr(ord("A") + row - 1), bold=True)]
            for col in range(1, cols + 1):
                barcodes = cells.get((row, col))
                values.append(_text_cell(ws, ", ".join(barcodes)) if barcodes else None)
            ws.append(values)
        for line in unplaced:
            ws.append([_text_cell(ws, line.position or "?"), _text_cell(ws, line.barcode)])
        ws.append([])
